// Small shared components: messages, busy buttons, pagination, status badges.
import { api } from "./api.js";
import { html, useEffect, useRef, useState } from "./lib.js";

/** GET `path` now and whenever it or one of `deps` changes; `reload()` asks again. An answer
 * that arrives after a newer request was made is dropped (typing in a search box). */
export function useFetch(path, deps = []) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let current = true;
    api("GET", path)
      .then((answer) => {
        if (!current) return;
        setData(answer);
        setError(null);
      })
      .catch((failure) => current && setError({ kind: "error", text: failure.message }));
    return () => {
      current = false;
    };
  }, [path, version, ...deps]);
  return { data, error, reload: () => setVersion((v) => v + 1) };
}

/** A counter that grows every `ms` (never when `ms` is 0): for views of other people's data
 * (the approval queue, webhook deliveries), which the caller's own stream does not announce. */
export function useRefresh(ms = 3000) {
  const [count, setCount] = useState(0);
  useEffect(() => {
    if (!ms) return undefined;
    const timer = setInterval(() => setCount((c) => c + 1), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return count;
}

export function Message({ message }) {
  if (!message) return null;
  const role = message.kind === "error" ? "alert" : "status";
  return html`<p class="message ${message.kind}" role=${role}>${message.text}</p>`;
}

export function StatusBadge({ status }) {
  return html`<span class="status status-${status}" data-status=${status}>${status}</span>`;
}

/** A button whose action runs once at a time: clicks while it runs are ignored. */
export function ActionButton({ action, children, class: cls = "", disabled = false, ...rest }) {
  const running = useRef(false);
  const [busy, setBusy] = useState(false);
  async function onClick(event) {
    event.preventDefault();
    if (running.current) return; // a double click: the first click is still at work
    running.current = true;
    setBusy(true);
    try {
      await action();
    } finally {
      running.current = false;
      setBusy(false);
    }
  }
  return html`<button type="button" class=${cls} onClick=${onClick} disabled=${disabled || busy}
    aria-busy=${busy ? "true" : "false"} ...${rest}>${children}</button>`;
}

/** Runs an action and reports its outcome through `setMessage`. */
export function reporter(setMessage) {
  return async (action, success) => {
    try {
      const result = await action();
      if (success) setMessage({ kind: "ok", text: success });
      return result;
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
      return undefined;
    }
  };
}

export function Pager({ page, onOffset }) {
  if (!page || page.total <= page.limit) return null;
  const last = page.offset + page.items.length;
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" disabled=${page.offset === 0}
      onClick=${() => onOffset(Math.max(0, page.offset - page.limit))}>Previous</button>
    <span>${page.offset + 1}–${last} of ${page.total}</span>
    <button type="button" disabled=${last >= page.total}
      onClick=${() => onOffset(page.offset + page.limit)}>Next</button>
  </nav>`;
}

export function Field({ label, id, hint, children }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${children}
    ${hint && html`<small id=${`${id}-hint`}>${hint}</small>`}
  </div>`;
}
