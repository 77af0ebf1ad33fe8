// The cart and checkout: one Idempotency-Key per cart content, so a repeated click or a
// retry after a lost answer places the order once (the API replays the first response).
import { api } from "../api.js";
import { cents, fromCents, money } from "../format.js";
import { html, useMemo, useRef, useState } from "../lib.js";
import { ActionButton, Field, Message } from "../ui.js";

function newKey() {
  return crypto.randomUUID();
}

export function CartView({ user, cart, setCart, navigate }) {
  const [address, setAddress] = useState("");
  const [note, setNote] = useState("");
  const [message, setMessage] = useState(null);
  const lines = Object.values(cart);
  const body = useMemo(() => {
    const order = { items: lines.map((l) => ({ product_id: l.product.id, quantity: l.quantity })) };
    if (address.trim()) order.shipping_address = address.trim();
    if (note.trim()) order.note = note.trim();
    return order;
  }, [cart, address, note]);
  // A new key whenever what would be sent changes; the same key for the same order.
  const key = useRef({ body: null, value: null });
  const bodyText = JSON.stringify(body);
  if (key.current.body !== bodyText) key.current = { body: bodyText, value: newKey() };

  const total = lines.reduce((sum, l) => sum + cents(l.product.price) * l.quantity, 0);
  const currency = lines[0]?.product.currency || "EUR";

  function setQuantity(id, quantity) {
    const next = { ...cart };
    if (quantity > 0) next[id] = { ...next[id], quantity };
    else delete next[id];
    setCart(next);
  }

  async function place() {
    try {
      const order = await api("POST", "/orders", {
        body,
        headers: { "Idempotency-Key": key.current.value },
      });
      setCart({});
      navigate(`#/orders/${order.id}`);
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
    }
  }

  if (lines.length === 0) {
    return html`<section class="panel" aria-labelledby="cart-title">
      <h1 id="cart-title">Cart</h1>
      <p>Your cart is empty. <a href="#/products">Browse the products</a>.</p>
      <${Message} message=${message} />
    </section>`;
  }
  return html`<section class="panel" aria-labelledby="cart-title">
    <h1 id="cart-title">Cart</h1>
    <table>
      <caption class="visually-hidden">Products in the cart</caption>
      <thead><tr><th scope="col">Product</th><th scope="col">Unit price</th>
        <th scope="col">Quantity</th><th scope="col">Line total</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${lines.map(({ product, quantity }) => html`<tr key=${product.id}>
        <th scope="row">${product.name}</th>
        <td>${money(product.price, product.currency)}</td>
        <td><label class="visually-hidden" for=${`cart-qty-${product.id}`}>Quantity of ${product.name}</label>
          <input id=${`cart-qty-${product.id}`} type="number" min="0" value=${quantity}
            onChange=${(e) => setQuantity(product.id, Number(e.currentTarget.value) || 0)} /></td>
        <td>${money(fromCents(cents(product.price) * quantity), product.currency)}</td>
        <td><button type="button" onClick=${() => setQuantity(product.id, 0)}
          aria-label=${`Remove ${product.name}`}>Remove</button></td>
      </tr>`)}</tbody>
      <tfoot><tr><th scope="row" colspan="3">Total</th>
        <td class="total" colspan="2">${money(fromCents(total), currency)}</td></tr></tfoot>
    </table>
    <${Field} label="Shipping address (optional)" id="cart-address">
      <textarea id="cart-address" rows="2" value=${address} onInput=${(e) => setAddress(e.currentTarget.value)} />
    <//>
    <${Field} label="Note (optional)" id="cart-note">
      <input id="cart-note" type="text" value=${note} onInput=${(e) => setNote(e.currentTarget.value)} />
    <//>
    <${Message} message=${message} />
    ${user
      ? html`<${ActionButton} class="primary" action=${place}>Place order<//>`
      : html`<p><a href="#/login">Log in</a> or <a href="#/register">register</a> to place the order.</p>`}
  </section>`;
}
