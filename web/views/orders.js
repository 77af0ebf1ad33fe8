// The caller's orders (all orders for an admin), kept current by live events; one order with
// its lines, its history as a timeline, and cancellation while the workflow allows it.
import { api, query } from "../api.js";
import { CANCELLABLE, money, shortId, when } from "../format.js";
import { html, useState } from "../lib.js";
import { ActionButton, Field, Message, Pager, StatusBadge, useFetch, useRefresh } from "../ui.js";

const STATUSES = ["pending", "validated", "approved", "processing", "completed", "rejected", "cancelled"];

export function OrdersView({ user, tick }) {
  // An admin sees everyone's orders; their own stream announces only their own.
  const refresh = useRefresh(user.role === "admin" ? 3000 : 0);
  const [filters, setFilters] = useState({ status: "", offset: 0 });
  const { data: page, error } = useFetch(`/orders${query({ ...filters, limit: 20 })}`, [tick, refresh]);

  return html`<section aria-labelledby="orders-title">
    <h1 id="orders-title">Orders</h1>
    <div class="filters">
      <div class="field">
        <label for="orders-status">Status</label>
        <select id="orders-status" value=${filters.status}
          onChange=${(e) => setFilters({ status: e.currentTarget.value, offset: 0 })}>
          <option value="">Any</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </div>
    </div>
    <${Message} message=${error} />
    ${page && page.items.length === 0 && html`<p>No orders yet. <a href="#/products">Browse the products</a>.</p>`}
    ${page && page.items.length > 0 && html`<table class="orders">
      <caption class="visually-hidden">Orders, newest first</caption>
      <thead><tr><th scope="col">Order</th><th scope="col">Placed</th><th scope="col">Items</th>
        <th scope="col">Total</th><th scope="col">Status</th></tr></thead>
      <tbody>${page.items.map((o) => html`<tr key=${o.id} data-order-id=${o.id}>
        <th scope="row"><a href=${`#/orders/${o.id}`}>#${shortId(o.id)}</a></th>
        <td>${when(o.created_at)}</td>
        <td>${o.items.reduce((n, i) => n + i.quantity, 0)}</td>
        <td>${money(o.total, o.currency)}</td>
        <td><${StatusBadge} status=${o.status} /></td>
      </tr>`)}</tbody>
    </table>`}
    <${Pager} page=${page} onOffset=${(offset) => setFilters({ ...filters, offset })} />
  </section>`;
}

function Timeline({ history }) {
  return html`<ol class="timeline" aria-label="History">
    ${history.map((h) => html`<li>
      <${StatusBadge} status=${h.to_status} />
      <span>${h.from_status ? `from ${h.from_status}` : "placed"} by ${h.actor}</span>
      <time datetime=${h.at}>${when(h.at)}</time>
      ${h.reason && html`<span class="muted">— ${h.reason}</span>`}
    </li>`)}
  </ol>`;
}

function CancelForm({ order, onDone }) {
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState(null);
  async function cancel() {
    try {
      const body = reason.trim() ? { reason: reason.trim() } : {};
      await api("POST", `/orders/${order.id}/cancel`, { body });
      setMessage({ kind: "ok", text: "The order is cancelled; its stock is released." });
      onDone();
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
    }
  }
  return html`<div class="panel inset">
    <${Field} label="Reason for cancelling (optional)" id="cancel-reason">
      <input id="cancel-reason" type="text" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} />
    <//>
    <${ActionButton} class="danger" action=${cancel}>Cancel order<//>
    <${Message} message=${message} />
  </div>`;
}

export function OrderView({ id, tick }) {
  const { data: order, error, reload } = useFetch(`/orders/${id}`, [tick]);
  const { data: history, reload: reloadHistory } = useFetch(`/orders/${id}/history`, [tick]);
  if (!order) return html`<section><h1>Order</h1><${Message} message=${error} /></section>`;
  return html`<section aria-labelledby="order-title" data-order-id=${order.id}>
    <h1 id="order-title">Order #${shortId(order.id)} <${StatusBadge} status=${order.status} /></h1>
    <p class="muted">Placed ${when(order.created_at)}; last change ${when(order.updated_at)}.</p>
    ${order.status_reason && html`<p>Reason: ${order.status_reason}</p>`}
    <table>
      <caption class="visually-hidden">Order lines</caption>
      <thead><tr><th scope="col">Product</th><th scope="col">SKU</th><th scope="col">Unit price</th>
        <th scope="col">Quantity</th><th scope="col">Line total</th></tr></thead>
      <tbody>${order.items.map((i) => html`<tr key=${i.product_id}>
        <th scope="row">${i.product_name}</th><td>${i.sku}</td><td>${money(i.unit_price, order.currency)}</td>
        <td>${i.quantity}</td><td>${money(i.line_total, order.currency)}</td></tr>`)}</tbody>
      <tfoot><tr><th scope="row" colspan="4">Total</th><td class="total">${money(order.total, order.currency)}</td></tr></tfoot>
    </table>
    ${order.shipping_address && html`<p>Ship to: ${order.shipping_address}</p>`}
    ${order.note && html`<p>Note: ${order.note}</p>`}
    <h2>History</h2>
    <${Timeline} history=${history || []} />
    ${CANCELLABLE.has(order.status) && html`<${CancelForm} order=${order} onDone=${() => {
      reload();
      reloadHistory();
    }} />`}
    <${Message} message=${error} />
    <p><a href="#/orders">All orders</a></p>
  </section>`;
}
