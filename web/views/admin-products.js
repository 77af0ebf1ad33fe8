// Admin: create products, edit them (If-Match on the version), adjust stock, deactivate.
import { api, query } from "../api.js";
import { money } from "../format.js";
import { html, useState } from "../lib.js";
import { ActionButton, Field, Message, Pager, reporter, useFetch } from "../ui.js";

const EMPTY = { sku: "", name: "", description: "", price: "", stock: "0" };

function CreateProduct({ onCreated }) {
  const [values, setValues] = useState(EMPTY);
  const [message, setMessage] = useState(null);
  const bind = (name) => ({
    id: `new-${name}`,
    value: values[name],
    onInput: (e) => setValues({ ...values, [name]: e.currentTarget.value }),
  });
  async function create(event) {
    event.preventDefault();
    const body = { sku: values.sku, name: values.name, price: values.price, stock: Number(values.stock) };
    if (values.description.trim()) body.description = values.description;
    try {
      const product = await api("POST", "/products", { body });
      setValues(EMPTY);
      setMessage({ kind: "ok", text: `Created ${product.name}.` });
      onCreated();
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
    }
  }
  return html`<form class="panel inset" onSubmit=${create} aria-labelledby="new-product-title">
    <h2 id="new-product-title">New product</h2>
    <div class="columns">
      <${Field} label="SKU" id="new-sku"><input required ...${bind("sku")} /><//>
      <${Field} label="Name" id="new-name"><input required ...${bind("name")} /><//>
      <${Field} label="Price" id="new-price" hint="Two decimal places, e.g. 19.90">
        <input required inputmode="decimal" pattern="[0-9]+(\\.[0-9]{1,2})?" aria-describedby="new-price-hint" ...${bind("price")} />
      <//>
      <${Field} label="Stock" id="new-stock"><input type="number" min="0" required ...${bind("stock")} /><//>
    </div>
    <${Field} label="Description (optional)" id="new-description"><textarea rows="2" ...${bind("description")} /><//>
    <${Message} message=${message} />
    <button type="submit" class="primary">Create product</button>
  </form>`;
}

function ProductRow({ product, onChanged }) {
  const [edit, setEdit] = useState({ name: product.name, price: product.price, description: product.description || "" });
  const [delta, setDelta] = useState("");
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState(null);
  const report = reporter(setMessage);
  const id = product.id;
  const save = () => report(async () => {
    const body = {};
    for (const field of ["name", "price", "description"]) {
      if (edit[field] !== (product[field] || "")) body[field] = edit[field];
    }
    if (Object.keys(body).length === 0) return;
    await api("PATCH", `/products/${id}`, { body, headers: { "If-Match": `"${product.version}"` } });
    onChanged();
  }, "Saved.");
  const adjust = () => report(async () => {
    await api("POST", `/products/${id}/stock`, { body: { delta: Number(delta), reason: reason || "adjustment" } });
    setDelta("");
    setReason("");
    onChanged();
  }, "Stock adjusted.");
  const setActive = (active) => report(async () => {
    await api("PATCH", `/products/${id}`, { body: { is_active: active }, headers: { "If-Match": `"${product.version}"` } });
    onChanged();
  }, active ? "Activated." : "Deactivated.");
  return html`<li class="card admin-product" data-sku=${product.sku}>
    <h3>${product.name} <span class="muted">${product.sku}</span> ${!product.is_active && html`<span class="tag">inactive</span>`}</h3>
    <p>${money(product.price, product.currency)} · ${product.stock} in stock · version ${product.version}</p>
    <div class="columns">
      <${Field} label="Name" id=${`name-${id}`}>
        <input id=${`name-${id}`} value=${edit.name} onInput=${(e) => setEdit({ ...edit, name: e.currentTarget.value })} />
      <//>
      <${Field} label="Price" id=${`price-${id}`}>
        <input id=${`price-${id}`} inputmode="decimal" value=${edit.price} onInput=${(e) => setEdit({ ...edit, price: e.currentTarget.value })} />
      <//>
      <${Field} label="Description" id=${`desc-${id}`}>
        <input id=${`desc-${id}`} value=${edit.description} onInput=${(e) => setEdit({ ...edit, description: e.currentTarget.value })} />
      <//>
    </div>
    <div class="row">
      <${ActionButton} action=${save}>Save changes<//>
      ${product.is_active
        ? html`<${ActionButton} class="danger" action=${() => setActive(false)}>Deactivate<//>`
        : html`<${ActionButton} action=${() => setActive(true)}>Activate<//>`}
    </div>
    <div class="columns">
      <${Field} label="Stock change (+/-)" id=${`delta-${id}`}>
        <input id=${`delta-${id}`} type="number" value=${delta} onInput=${(e) => setDelta(e.currentTarget.value)} />
      <//>
      <${Field} label="Reason" id=${`reason-${id}`}>
        <input id=${`reason-${id}`} value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} />
      <//>
    </div>
    <${ActionButton} action=${adjust} disabled=${!delta || Number(delta) === 0}>Adjust stock<//>
    <${Message} message=${message} />
  </li>`;
}

export function AdminProductsView() {
  const [q, setQ] = useState("");
  const [offset, setOffset] = useState(0);
  const params = { q: q.trim(), include_inactive: "true", limit: 20, offset, sort: "-created_at" };
  const { data: page, error, reload: changed } = useFetch(`/products${query(params)}`);
  return html`<section aria-labelledby="admin-products-title">
    <h1 id="admin-products-title">Products (admin)</h1>
    <${CreateProduct} onCreated=${changed} />
    <div class="filters"><div class="field">
      <label for="admin-product-search">Search</label>
      <input id="admin-product-search" type="search" value=${q} onInput=${(e) => { setQ(e.currentTarget.value); setOffset(0); }} />
    </div></div>
    <${Message} message=${error} />
    ${page && html`<ul class="list">${page.items.map((p) => html`<${ProductRow} key=${`${p.id}-${p.version}`} product=${p} onChanged=${changed} />`)}</ul>`}
    <${Pager} page=${page} onOffset=${setOffset} />
  </section>`;
}
