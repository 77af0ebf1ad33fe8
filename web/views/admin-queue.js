// Admin: the approval queue — validated orders waiting for a decision, largest first
// (orders at most AUTO_APPROVE_MAX_TOTAL are approved by Beat after the grace period).
import { api, query } from "../api.js";
import { money, shortId, when } from "../format.js";
import { html, useState } from "../lib.js";
import { ActionButton, Message, Pager, useFetch, useRefresh } from "../ui.js";

function QueueRow({ order, onDecided }) {
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState(null);
  async function decide(path, body) {
    try {
      await api("POST", `/orders/${order.id}/${path}`, { body });
      onDecided(`Order #${shortId(order.id)} ${path === "approve" ? "approved" : "rejected"}.`);
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
    }
  }
  const reasonId = `reject-reason-${order.id}`;
  return html`<li class="card" data-order-id=${order.id}>
    <h2><a href=${`#/orders/${order.id}`}>Order #${shortId(order.id)}</a> · ${money(order.total, order.currency)}</h2>
    <p class="muted">Placed ${when(order.created_at)} · ${order.items.length} line(s) · customer ${shortId(order.user_id)}</p>
    <ul>${order.items.map((i) => html`<li>${i.quantity} × ${i.product_name} (${i.sku})</li>`)}</ul>
    <div class="row">
      <${ActionButton} class="primary" action=${() => decide("approve")}
        aria-label=${`Approve order ${shortId(order.id)}`}>Approve<//>
      <label for=${reasonId}>Reason</label>
      <input id=${reasonId} value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} />
      <${ActionButton} class="danger" disabled=${!reason.trim()}
        action=${() => decide("reject", { reason: reason.trim() })}
        aria-label=${`Reject order ${shortId(order.id)}`}>Reject<//>
    </div>
    <${Message} message=${message} />
  </li>`;
}

export function AdminQueueView({ tick }) {
  const refresh = useRefresh();
  const [offset, setOffset] = useState(0);
  const [message, setMessage] = useState(null);
  const params = { status: "validated", sort: "-total", limit: 20, offset };
  const { data: page, error, reload } = useFetch(`/orders${query(params)}`, [tick, refresh]);
  const decided = (text) => {
    setMessage({ kind: "ok", text });
    reload();
  };
  return html`<section aria-labelledby="queue-title">
    <h1 id="queue-title">Approval queue</h1>
    <p class="muted">Validated orders waiting for an administrator, largest first.</p>
    <${Message} message=${error || message} />
    ${page && page.items.length === 0 && html`<p>The queue is empty.</p>`}
    ${page && html`<ul class="list">${page.items.map((o) => html`<${QueueRow} key=${o.id} order=${o} onDecided=${decided} />`)}</ul>`}
    <${Pager} page=${page} onOffset=${setOffset} />
  </section>`;
}
