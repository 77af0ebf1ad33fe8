// Live updates: views re-read what they show on every tick.
const POLL_MS = 2000;

/** Calls `onEvent(null)` every POLL_MS until the returned function is called. */
export function connectLive(onEvent) {
  const poller = setInterval(() => onEvent(null), POLL_MS);
  return () => clearInterval(poller);
}
