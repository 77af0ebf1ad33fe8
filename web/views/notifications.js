// The caller's notifications: unread first filter, mark one or all read.
import { api, query } from "../api.js";
import { when } from "../format.js";
import { html, useState } from "../lib.js";
import { ActionButton, Message, Pager, useFetch } from "../ui.js";

export function NotificationsView({ tick, onRead }) {
  const [filters, setFilters] = useState({ unread: false, offset: 0 });
  const [message, setMessage] = useState(null);
  const params = { unread: filters.unread ? "true" : "", offset: filters.offset, limit: 20 };
  const { data: page, error, reload } = useFetch(`/notifications${query(params)}`, [tick]);

  async function run(action) {
    try {
      await action();
      reload();
      onRead();
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
    }
  }
  return html`<section aria-labelledby="notifications-title">
    <h1 id="notifications-title">Notifications</h1>
    <div class="filters">
      <div class="field checkbox">
        <input id="notifications-unread" type="checkbox" checked=${filters.unread}
          onChange=${(e) => setFilters({ unread: e.currentTarget.checked, offset: 0 })} />
        <label for="notifications-unread">Unread only</label>
      </div>
      <${ActionButton} action=${() => run(() => api("POST", "/notifications/read-all"))}>Mark all read<//>
    </div>
    <${Message} message=${error || message} />
    ${page && page.items.length === 0 && html`<p>Nothing here.</p>`}
    ${page && html`<ul class="list" aria-label="Notifications">
      ${page.items.map((n) => html`<li key=${n.id} class=${n.read_at ? "read" : "unread"}>
        <div>
          <strong>${n.title}</strong> ${!n.read_at && html`<span class="tag">new</span>`}
          <p>${n.body}</p>
          <p class="muted"><time datetime=${n.created_at}>${when(n.created_at)}</time>
            ${n.data?.order_id && html` · <a href=${`#/orders/${n.data.order_id}`}>the order</a>`}</p>
        </div>
        ${!n.read_at && html`<${ActionButton} action=${() => run(() => api("POST", `/notifications/${n.id}/read`))}
          aria-label=${`Mark “${n.title}” read`}>Mark read<//>`}
      </li>`)}
    </ul>`}
    <${Pager} page=${page} onOffset=${(offset) => setFilters({ ...filters, offset })} />
  </section>`;
}
