// Live updates: the notifications stream (an EventSource), else polling while it is down.
//
// EventSource cannot send Authorization, so each connection spends a one-time ticket
// (POST /notifications/stream-ticket) and names the last notification it saw, which the
// stream replays from (ADR 0015). The browser's own reconnect would reuse the spent ticket,
// so on any error the source is closed and reopened here with a new one.
import { api } from "./api.js";

const POLL_MS = 2000;
const RECONNECT_MS = 1000;
const EVENT_TYPES = ["order.created", "order.status_changed"];

/** Calls `onEvent(notification)` for each pushed notification, `onEvent(null)` whenever
 * what is shown may be stale (connected again, or a poll while the stream is down), and
 * `onMode("live" | "polling")` when the way of keeping up changes. */
export function connectLive(onEvent, onMode) {
  let source = null;
  let closed = false;
  let poller = null;
  let retry = null;
  let lastEventId = "";

  const startPolling = () => {
    if (poller === null) onMode("polling");
    poller ??= setInterval(() => onEvent(null), POLL_MS);
  };
  const stopPolling = () => {
    clearInterval(poller);
    poller = null;
  };
  const reopenLater = (ms) => {
    clearTimeout(retry);
    retry = setTimeout(open, ms);
  };

  async function open() {
    if (closed) return;
    let ticket;
    try {
      ticket = (await api("POST", "/notifications/stream-ticket")).ticket;
    } catch {
      startPolling();
      reopenLater(RECONNECT_MS * 10);
      return;
    }
    if (closed) return;
    const params = new URLSearchParams({ ticket });
    if (lastEventId) params.set("last_event_id", lastEventId);
    source = new EventSource(`/api/v1/notifications/stream?${params}`);
    source.onopen = () => {
      stopPolling();
      onMode("live");
      onEvent(null); // catch up on whatever changed while not connected
    };
    const deliver = (event) => {
      lastEventId = event.lastEventId || lastEventId;
      onEvent(JSON.parse(event.data));
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, deliver);
    source.onerror = () => {
      source.close();
      source = null;
      startPolling();
      reopenLater(RECONNECT_MS);
    };
  }

  open();
  return () => {
    closed = true;
    clearTimeout(retry);
    stopPolling();
    source?.close();
  };
}
