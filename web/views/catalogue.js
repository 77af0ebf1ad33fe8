// Browse and search the catalogue; add products to the cart.
import { query } from "../api.js";
import { money } from "../format.js";
import { html, useEffect, useState } from "../lib.js";
import { Message, Pager, useFetch } from "../ui.js";

const PAGE_SIZE = 12;

function useDebounced(value, ms) {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

function ProductCard({ product, inCart, onAdd }) {
  const [quantity, setQuantity] = useState(1);
  const inputId = `qty-${product.id}`;
  const soldOut = product.stock <= 0;
  return html`<li class="card product" data-sku=${product.sku}>
    <h2>${product.name}</h2>
    <p class="muted">SKU ${product.sku}</p>
    ${product.description && html`<p>${product.description}</p>`}
    <p class="price">${money(product.price, product.currency)}</p>
    <p class=${soldOut ? "stock out" : "stock"}>${soldOut ? "Out of stock" : `${product.stock} in stock`}</p>
    <div class="row">
      <label for=${inputId}>Quantity</label>
      <input id=${inputId} type="number" min="1" max=${Math.max(1, product.stock)} value=${quantity}
        disabled=${soldOut} onInput=${(e) => setQuantity(Number(e.currentTarget.value) || 1)} />
      <button type="button" disabled=${soldOut} onClick=${() => onAdd(product, quantity)}
        aria-label=${`Add ${product.name} to the cart`}>Add to cart</button>
    </div>
    ${inCart > 0 && html`<p class="muted">${inCart} in your cart</p>`}
  </li>`;
}

export function CatalogueView({ cart, setCart }) {
  const [filters, setFilters] = useState({ q: "", in_stock: false, sort: "name", offset: 0 });
  const [message, setMessage] = useState(null);
  const search = useDebounced(filters.q.trim(), 200); // typing asks once it pauses
  const params = {
    q: search,
    in_stock: filters.in_stock ? "true" : "",
    sort: filters.sort,
    limit: PAGE_SIZE,
    offset: filters.offset,
  };
  const { data: page, error } = useFetch(`/products${query(params)}`);

  function add(product, quantity) {
    const line = cart[product.id];
    const total = (line ? line.quantity : 0) + quantity;
    setCart({ ...cart, [product.id]: { product, quantity: total } });
    setMessage({ kind: "ok", text: `${product.name} × ${quantity} added to the cart.` });
  }

  const set = (change) => setFilters({ ...filters, offset: 0, ...change });
  return html`<section aria-labelledby="catalogue-title">
    <h1 id="catalogue-title">Products</h1>
    <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
      <div class="field">
        <label for="product-search">Search products</label>
        <input id="product-search" type="search" value=${filters.q}
          onInput=${(e) => set({ q: e.currentTarget.value })} />
      </div>
      <div class="field">
        <label for="product-sort">Sort by</label>
        <select id="product-sort" value=${filters.sort} onChange=${(e) => set({ sort: e.currentTarget.value })}>
          <option value="name">Name</option>
          <option value="price">Price, low to high</option>
          <option value="-price">Price, high to low</option>
          <option value="-created_at">Newest</option>
        </select>
      </div>
      <div class="field checkbox">
        <input id="product-in-stock" type="checkbox" checked=${filters.in_stock}
          onChange=${(e) => set({ in_stock: e.currentTarget.checked })} />
        <label for="product-in-stock">In stock only</label>
      </div>
    </form>
    <${Message} message=${error || message} />
    ${page && page.items.length === 0 && html`<p>No product matches.</p>`}
    ${page && html`<ul class="grid" aria-label="Products">
      ${page.items.map(
        (p) => html`<${ProductCard} key=${p.id} product=${p} inCart=${cart[p.id]?.quantity || 0} onAdd=${add} />`,
      )}
    </ul>`}
    <${Pager} page=${page} onOffset=${(offset) => setFilters({ ...filters, offset })} />
  </section>`;
}
