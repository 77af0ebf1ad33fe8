// Admin: find users, deactivate or reactivate them, promote or demote.
import { api, query } from "../api.js";
import { when } from "../format.js";
import { html, useState } from "../lib.js";
import { ActionButton, Message, Pager, useFetch } from "../ui.js";

export function AdminUsersView({ user: me }) {
  const [q, setQ] = useState("");
  const [offset, setOffset] = useState(0);
  const [message, setMessage] = useState(null);
  const { data: page, error, reload } = useFetch(`/users${query({ q: q.trim(), limit: 20, offset })}`);
  async function change(user, body, text) {
    try {
      await api("PATCH", `/users/${user.id}`, { body });
      setMessage({ kind: "ok", text: `${user.email}: ${text}.` });
      reload();
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
    }
  }
  return html`<section aria-labelledby="users-title">
    <h1 id="users-title">Users</h1>
    <div class="filters"><div class="field">
      <label for="user-search">Search by email or name</label>
      <input id="user-search" type="search" value=${q} onInput=${(e) => { setQ(e.currentTarget.value); setOffset(0); }} />
    </div></div>
    <${Message} message=${error || message} />
    ${page && html`<table>
      <caption class="visually-hidden">Users</caption>
      <thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Role</th>
        <th scope="col">Active</th><th scope="col">Since</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${page.items.map((u) => html`<tr key=${u.id} data-email=${u.email}>
        <th scope="row">${u.email}</th><td>${u.full_name || ""}</td><td>${u.role}</td>
        <td>${u.is_active ? "yes" : "no"}</td><td>${when(u.created_at)}</td>
        <td class="row">${u.id !== me.id && html`
          ${u.is_active
            ? html`<${ActionButton} class="danger" action=${() => change(u, { is_active: false }, "deactivated")}
                aria-label=${`Deactivate ${u.email}`}>Deactivate<//>`
            : html`<${ActionButton} action=${() => change(u, { is_active: true }, "reactivated")}
                aria-label=${`Reactivate ${u.email}`}>Reactivate<//>`}
          ${u.role === "customer"
            ? html`<${ActionButton} action=${() => change(u, { role: "admin" }, "promoted to admin")}
                aria-label=${`Promote ${u.email} to admin`}>Promote<//>`
            : html`<${ActionButton} action=${() => change(u, { role: "customer" }, "demoted to customer")}
                aria-label=${`Demote ${u.email} to customer`}>Demote<//>`}`}
        </td></tr>`)}</tbody>
    </table>`}
    <${Pager} page=${page} onOffset=${setOffset} />
  </section>`;
}
