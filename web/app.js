// The console: session, hash routes, navigation, live updates.
import { api, hasAccessToken, logout, mightHaveSession, onSessionEnd, refreshSession } from "./api.js";
import { connectLive } from "./live.js";
import { html, render, useEffect, useRef, useState } from "./lib.js";
import { AdminProductsView } from "./views/admin-products.js";
import { AdminQueueView } from "./views/admin-queue.js";
import { AdminUsersView } from "./views/admin-users.js";
import { AdminWebhooksView } from "./views/admin-webhooks.js";
import { LoginView, RegisterView } from "./views/auth.js";
import { CartView } from "./views/cart.js";
import { CatalogueView } from "./views/catalogue.js";
import { NotificationsView } from "./views/notifications.js";
import { OrdersView, OrderView } from "./views/orders.js";

function currentRoute() {
  const path = location.hash.replace(/^#/, "") || "/products";
  return path.split("/").filter(Boolean);
}

function navigate(hash) {
  location.hash = hash;
}

/** The signed-in user: undefined while the cookie is tried, null when anonymous. */
function useSession() {
  const [user, setUser] = useState(undefined);
  async function load() {
    try {
      setUser(await api("GET", "/users/me"));
    } catch {
      setUser(null);
    }
  }
  useEffect(() => {
    // Only try the refresh cookie when a session may exist: an anonymous visit makes no
    // request that is bound to fail.
    if (mightHaveSession()) refreshSession().then((ok) => (ok ? load() : setUser(null)));
    else setUser(null);
    return onSessionEnd(() => setUser(null));
  }, []);
  return [user, load, setUser];
}

/** Live events: a tick that views re-read on, the unread count, the last notification's
 * title (announced to screen readers) and how the page keeps up ("live" or "polling"). */
function useLive(user) {
  const [tick, setTick] = useState(0);
  const [unread, setUnread] = useState(0);
  const [announcement, setAnnouncement] = useState("");
  const [mode, setMode] = useState(null);
  const countUnread = () => {
    if (!hasAccessToken()) return;
    api("GET", "/notifications?unread=true&limit=1")
      .then((page) => setUnread(page.total))
      .catch(() => {});
  };
  useEffect(() => {
    if (!user) return undefined;
    countUnread();
    const close = connectLive((notification) => {
      setTick((t) => t + 1);
      if (notification) {
        setAnnouncement(notification.title);
        countUnread();
      }
    }, setMode);
    return () => {
      close();
      setMode(null);
    };
  }, [user?.id]);
  return { tick, unread, countUnread, announcement, mode };
}

function LiveIndicator({ mode }) {
  if (!mode) return null;
  const text = mode === "live" ? "Live" : "Reconnecting…";
  return html`<span class=${`live live-${mode}`} data-live=${mode}
    title=${mode === "live" ? "Updates arrive as they happen" : "Checking every few seconds"}>${text}</span>`;
}

function Nav({ user, unread, cartCount, mode, onLogout }) {
  const link = (hash, label, extra) => html`<li><a href=${hash}
    aria-current=${location.hash === hash ? "page" : undefined}>${label}${extra}</a></li>`;
  const badge = unread > 0 && html` <span class="badge" aria-label=${`${unread} unread`}>${unread}</span>`;
  return html`<header class="top">
    <a class="brand" href="#/products">Orderflow</a>
    <nav aria-label="Main">
      <ul>
        ${link("#/products", "Products")}
        ${link("#/cart", "Cart", cartCount > 0 && html` <span class="badge" aria-label=${`${cartCount} items`}>${cartCount}</span>`)}
        ${user && link("#/orders", user.role === "admin" ? "Orders" : "My orders")}
        ${user && link("#/notifications", "Notifications", badge)}
      </ul>
      ${user?.role === "admin" && html`<ul aria-label="Administration">
        ${link("#/admin/queue", "Approval queue")}
        ${link("#/admin/products", "Manage products")}
        ${link("#/admin/users", "Users")}
        ${link("#/admin/webhooks", "Webhooks")}
      </ul>`}
    </nav>
    <div class="who">
      <${LiveIndicator} mode=${mode} />
      ${user
        ? html`<span>${user.full_name || user.email}</span> <button type="button" onClick=${onLogout}>Log out</button>`
        : html`<a href="#/login">Log in</a> <a href="#/register">Register</a>`}
    </div>
  </header>`;
}

function Forbidden() {
  return html`<section class="panel"><h1>Not available</h1><p>This page is for administrators.</p></section>`;
}

function Page({ route, user, live, cart, setCart, onSignedIn }) {
  const [area, id] = route;
  const props = { user, tick: live.tick, cart, setCart, navigate };
  const needsUser = ["orders", "notifications", "admin"].includes(area);
  if (needsUser && !user) return html`<${LoginView} onSignedIn=${onSignedIn} />`;
  if (area === "admin" && user.role !== "admin") return html`<${Forbidden} />`;
  switch (area) {
    case "login":
      return html`<${LoginView} onSignedIn=${onSignedIn} />`;
    case "register":
      return html`<${RegisterView} onSignedIn=${onSignedIn} />`;
    case "cart":
      return html`<${CartView} ...${props} />`;
    case "orders":
      return id ? html`<${OrderView} id=${id} ...${props} />` : html`<${OrdersView} ...${props} />`;
    case "notifications":
      return html`<${NotificationsView} ...${props} onRead=${live.countUnread} />`;
    case "admin":
      if (id === "queue") return html`<${AdminQueueView} ...${props} />`;
      if (id === "users") return html`<${AdminUsersView} ...${props} />`;
      if (id === "webhooks") return html`<${AdminWebhooksView} ...${props} />`;
      return html`<${AdminProductsView} ...${props} />`;
    default:
      return html`<${CatalogueView} ...${props} />`;
  }
}

function App() {
  const [route, setRoute] = useState(currentRoute());
  const [user, loadUser, setUser] = useSession();
  const [cart, setCart] = useState({});
  const live = useLive(user);
  const main = useRef(null);
  useEffect(() => {
    const onHash = () => {
      setRoute(currentRoute());
      main.current?.focus(); // keyboard and screen-reader users land on the new page
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  async function signedIn() {
    await loadUser();
    if (["login", "register"].includes(route[0])) navigate("#/products");
  }
  async function signOut() {
    await logout().catch(() => {});
    setUser(null);
    setCart({});
    navigate("#/products");
  }
  const cartCount = Object.values(cart).reduce((n, line) => n + line.quantity, 0);
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); main.current?.focus(); }}>Skip to content</a>
    <${Nav} user=${user} unread=${live.unread} cartCount=${cartCount} mode=${live.mode} onLogout=${signOut} />
    <main id="main" ref=${main} tabindex="-1">
      ${user === undefined
        ? html`<p role="status">Loading…</p>`
        : html`<${Page} route=${route} user=${user} live=${live} cart=${cart} setCart=${setCart} onSignedIn=${signedIn} />`}
    </main>
    <div class="visually-hidden" aria-live="polite">${live.announcement}</div>`;
}

render(html`<${App} />`, document.getElementById("app"));
