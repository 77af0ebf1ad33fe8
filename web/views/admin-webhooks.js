// Admin: webhook endpoints — subscribe, rotate the signing secret, read the delivery log and
// replay a delivery. A secret is shown once, when it is created or rotated.
import { api, query } from "../api.js";
import { when } from "../format.js";
import { html, useState } from "../lib.js";
import { ActionButton, Field, Message, Pager, useFetch, useRefresh } from "../ui.js";

const EVENT_TYPES = ["order.created", "order.status_changed"];

function Secret({ secret, previousUntil }) {
  if (!secret) return null;
  return html`<div class="panel inset secret" role="status">
    <p>Signing secret — copy it now, it is not shown again:</p>
    <code>${secret}</code>
    ${previousUntil && html`<p class="muted">The previous secret also signs until ${when(previousUntil)}.</p>`}
  </div>`;
}

function CreateWebhook({ onCreated }) {
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [types, setTypes] = useState(new Set(EVENT_TYPES));
  const [message, setMessage] = useState(null);
  const [secret, setSecret] = useState(null);
  function toggle(type, on) {
    const next = new Set(types);
    if (on) next.add(type);
    else next.delete(type);
    setTypes(next);
  }
  async function create(event) {
    event.preventDefault();
    const body = { url, event_types: [...types] };
    if (description.trim()) body.description = description.trim();
    try {
      const hook = await api("POST", "/webhooks", { body });
      setSecret(hook.secret);
      setUrl("");
      setDescription("");
      setMessage({ kind: "ok", text: `Subscribed ${hook.url}.` });
      onCreated();
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
    }
  }
  return html`<form class="panel inset" onSubmit=${create} aria-labelledby="new-webhook-title">
    <h2 id="new-webhook-title">New endpoint</h2>
    <${Field} label="URL" id="webhook-url">
      <input id="webhook-url" type="url" required value=${url} onInput=${(e) => setUrl(e.currentTarget.value)} />
    <//>
    <${Field} label="Description (optional)" id="webhook-description">
      <input id="webhook-description" value=${description} onInput=${(e) => setDescription(e.currentTarget.value)} />
    <//>
    <fieldset><legend>Events</legend>
      ${EVENT_TYPES.map((t) => html`<div class="field checkbox">
        <input id=${`webhook-type-${t}`} type="checkbox" checked=${types.has(t)}
          onChange=${(e) => toggle(t, e.currentTarget.checked)} />
        <label for=${`webhook-type-${t}`}>${t}</label></div>`)}
    </fieldset>
    <${Message} message=${message} />
    <${Secret} secret=${secret} />
    <button type="submit" class="primary" disabled=${types.size === 0}>Subscribe</button>
  </form>`;
}

function Deliveries({ hook, tick }) {
  const refresh = useRefresh();
  const [offset, setOffset] = useState(0);
  const [message, setMessage] = useState(null);
  const path = `/webhooks/${hook.id}/deliveries${query({ limit: 10, offset })}`;
  const { data: page, error, reload } = useFetch(path, [tick, refresh]);
  async function replay(delivery) {
    try {
      await api("POST", `/webhooks/${hook.id}/deliveries/${delivery.id}/replay`);
      setMessage({ kind: "ok", text: "Delivery queued again." });
      reload();
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
    }
  }
  return html`<div>
    <${Message} message=${error || message} />
    ${page && page.items.length === 0 && html`<p class="muted">No deliveries yet.</p>`}
    ${page && page.items.length > 0 && html`<table>
      <caption>Delivery log</caption>
      <thead><tr><th scope="col">Event</th><th scope="col">Status</th><th scope="col">Attempt</th>
        <th scope="col">Response</th><th scope="col">Next attempt</th><th scope="col">Created</th>
        <th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${page.items.map((d) => html`<tr key=${d.id} data-status=${d.status} data-attempt=${d.attempt}>
        <th scope="row">${d.event_type}</th>
        <td><span class=${`status status-${d.status}`}>${d.status}</span></td>
        <td>${d.attempt}</td>
        <td>${d.response_status ?? ""} ${d.error || ""}${d.latency_ms != null && html` <span class="muted">(${Math.round(d.latency_ms)} ms)</span>`}</td>
        <td>${when(d.next_attempt_at)}</td>
        <td>${when(d.created_at)}</td>
        <td>${d.status !== "pending" && html`<${ActionButton} action=${() => replay(d)}
          aria-label=${`Replay the ${d.event_type} delivery`}>Replay<//>`}</td>
      </tr>`)}</tbody>
    </table>`}
    <${Pager} page=${page} onOffset=${setOffset} />
  </div>`;
}

function WebhookCard({ hook, tick, onChanged }) {
  const [open, setOpen] = useState(false);
  const [secret, setSecret] = useState(null);
  const [message, setMessage] = useState(null);
  async function run(action, text) {
    try {
      const result = await action();
      setMessage({ kind: "ok", text });
      return result;
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
      return undefined;
    }
  }
  const rotate = async () => {
    const result = await run(() => api("POST", `/webhooks/${hook.id}/rotate-secret`), "Secret rotated.");
    if (result) setSecret(result);
  };
  const enable = async () => {
    const result = await run(() => api("POST", `/webhooks/${hook.id}/enable`), "Enabled.");
    if (result) {
      setMessage({ kind: "ok", text: `Enabled; ${result.replayed} failed deliveries sent again.` });
      onChanged();
    }
  };
  const remove = async () => {
    await run(() => api("DELETE", `/webhooks/${hook.id}`), "Deleted.");
    onChanged();
  };
  return html`<li class="card" data-webhook-id=${hook.id}>
    <h2>${hook.url}</h2>
    <p class="muted">${hook.description ? `${hook.description} · ` : ""}${hook.event_types.join(", ")}
      ${!hook.enabled && html` · <span class="tag">disabled</span> ${hook.disabled_reason || ""}`}</p>
    <div class="row">
      <button type="button" aria-expanded=${open ? "true" : "false"} onClick=${() => setOpen(!open)}>
        ${open ? "Hide deliveries" : "Show deliveries"}</button>
      <${ActionButton} action=${rotate}>Rotate secret<//>
      ${!hook.enabled && html`<${ActionButton} action=${enable}>Enable<//>`}
      <${ActionButton} class="danger" action=${remove}>Delete<//>
    </div>
    <${Message} message=${message} />
    <${Secret} secret=${secret?.secret} previousUntil=${secret?.previous_secret_expires_at} />
    ${open && html`<${Deliveries} hook=${hook} tick=${tick} />`}
  </li>`;
}

export function AdminWebhooksView({ tick }) {
  const [offset, setOffset] = useState(0);
  const { data: page, error, reload: changed } = useFetch(`/webhooks${query({ limit: 20, offset })}`);
  return html`<section aria-labelledby="webhooks-title">
    <h1 id="webhooks-title">Webhooks</h1>
    <${CreateWebhook} onCreated=${changed} />
    <${Message} message=${error} />
    ${page && page.items.length === 0 && html`<p>No endpoints yet.</p>`}
    ${page && html`<ul class="list">${page.items.map((h) => html`<${WebhookCard} key=${h.id} hook=${h} tick=${tick} onChanged=${changed} />`)}</ul>`}
    <${Pager} page=${page} onOffset=${setOffset} />
  </section>`;
}
