"""The web console in a real browser (Debian's chromium) against the real processes:
a customer registers, orders and watches the order complete without reloading; an admin
approves a large order from the queue; a double click places one order. Every test fails
on any console error, page error or CSP violation (the `open_page` fixture)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    Receiver,
    Seeder,
    Watched,
    audit_accessibility,
    new_email,
    screenshot,
)

pytestmark = pytest.mark.slow

WORKFLOW_SECONDS = 60_000  # ms: four Beat steps of 1 s each, with room for a loaded machine


def log_in(page: Any, email: str, password: str) -> None:
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for()


def add_to_cart(page: Any, product: dict[str, Any], quantity: int) -> None:
    page.get_by_role("link", name="Products").click()
    page.get_by_label("Search products").fill(product["sku"])
    card = page.locator(f'li.product[data-sku="{product["sku"]}"]')
    card.get_by_label("Quantity").fill(str(quantity))
    card.get_by_role("button", name=f"Add {product['name']} to the cart").click()
    page.get_by_role("status").filter(has_text="added to the cart").wait_for()


def wait_until(predicate: Callable[[], bool], seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


def watch_live_mode(page: Any) -> None:
    """Record every change of the live indicator (a fallback to polling would show)."""
    page.evaluate(
        """() => { window.__modes = [];
          new MutationObserver(() => {
            const mode = document.querySelector("[data-live]")?.dataset.live ?? "none";
            if (mode !== "live") window.__modes.push(mode);
          }).observe(document.body, { subtree: true, childList: true, attributes: true });
        }"""
    )


def mark_document(page: Any) -> None:
    """A marker that a reload or a navigation to another document would lose."""
    page.evaluate("window.__sameDocument = true")


def still_same_document(page: Any) -> bool:
    return bool(page.evaluate("window.__sameDocument === true"))


def test_csp_violations_are_caught(open_page: Any, watched: Watched) -> None:
    """The zero-violation checks below mean something: an inline script is refused and seen."""
    page = open_page()
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__inline = 1"; document.body.append(s); }"""
    )
    page.wait_for_function("() => true")
    assert page.evaluate("window.__inline") is None
    assert any("script-src" in v for v in watched.csp_violations), watched.csp_violations
    watched.csp_violations.clear()
    watched.console_errors.clear()  # Chromium also logs the refusal


def test_the_accessibility_audit_finds_what_it_looks_for(open_page: Any) -> None:
    """The audit run before every screenshot means something: it sees faint text and an
    unlabelled field."""
    page = open_page()
    page.get_by_role("heading", name="Products").wait_for()
    assert audit_accessibility(page) == []
    page.evaluate(
        """() => { const p = document.createElement("p"); p.textContent = "faint";
                   p.style.color = "#cccccc"; document.querySelector("main").append(p);
                   const i = document.createElement("input"); i.id = "bare";
                   document.querySelector("main").append(i); }"""
    )
    problems = audit_accessibility(page)
    assert "unlabelled input#bare" in problems
    assert any(p.startswith("contrast ") and '"faint"' in p for p in problems), problems


def focus_by_tab(page: Any, text: str) -> None:
    """Press Tab until the focused element reads `text` (a keyboard user's way there)."""
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == text:
            return
    raise AssertionError(f"Tab never reached {text!r}")


def test_a_keyboard_alone_logs_in(open_page: Any, seed: Seeder) -> None:
    email, _ = seed.customer()
    page = open_page()
    page.get_by_role("heading", name="Products").wait_for()
    focus_by_tab(page, "Log in")
    page.keyboard.press("Enter")
    page.get_by_label("Email").wait_for()
    focus_by_tab(page, "")  # the first field of the form
    assert page.evaluate("document.activeElement.id") == "auth-email"
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Log out").wait_for()


def test_customer_registers_orders_and_watches_it_complete(
    open_page: Any, seed: Seeder, shots: Path
) -> None:
    seed.product("Espresso beans 1 kg", "18.50", 40)
    product = seed.product("Ceramic mug", "12.50", 25)
    page = open_page()
    streams: list[str] = []
    page.on(
        "response",
        lambda r: (
            streams.append(r.url)
            if "/api/v1/notifications/stream?" in r.url
            and r.status == 200
            and r.headers.get("content-type", "").startswith("text/event-stream")
            else None
        ),
    )
    mark_document(page)
    screenshot(page, "catalogue", shots)

    email = new_email("shopper")
    page.get_by_role("link", name="Register").click()
    page.get_by_label("Full name (optional)").fill("Ada Shopper")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    page.get_by_role("button", name="Log out").wait_for()
    page.locator('[data-live="live"]').wait_for()
    watch_live_mode(page)

    add_to_cart(page, product, 2)
    page.get_by_role("link", name="Cart").click()
    page.get_by_label("Shipping address (optional)").fill("1 Harbour Street, Lisbon")
    screenshot(page, "cart", shots)
    page.get_by_role("button", name="Place order").click()

    heading = page.get_by_role("heading", name="Order #")
    heading.wait_for()
    page.locator('h1 [data-status="completed"]').wait_for(timeout=WORKFLOW_SECONDS)
    timeline = page.get_by_role("list", name="History").locator("li")
    expect(timeline).to_have_count(5)
    steps = [s.strip() for s in timeline.locator(".status").all_inner_texts()]
    assert steps == ["pending", "validated", "approved", "processing", "completed"]
    assert still_same_document(page), "the page was reloaded"
    screenshot(page, "order", shots)

    assert streams, "no notifications stream was opened"
    assert page.locator("[data-live]").get_attribute("data-live") == "live"
    assert page.evaluate("window.__modes") == [], "the page fell back to polling"

    page.get_by_role("link", name="My orders").click()
    page.locator('td [data-status="completed"]').wait_for()
    screenshot(page, "orders", shots)
    badge = page.get_by_role("link", name="Notifications").locator(".badge")
    badge.filter(has_text="5").wait_for()  # created + four status changes
    page.get_by_role("link", name="Notifications").click()
    page.get_by_role("list", name="Notifications").locator("li.unread").nth(4).wait_for()
    screenshot(page, "notifications", shots)
    page.get_by_role("button", name="Mark all read").click()
    badge.wait_for(state="detached")
    # the badge and the list are two fetches after the click: wait for the list's answer too
    expect(page.get_by_role("list", name="Notifications").locator("li.unread")).to_have_count(0)
    assert still_same_document(page), "the page was reloaded"


def test_admin_approves_a_large_order_from_the_queue(
    open_page: Any, seed: Seeder, shots: Path
) -> None:
    bike = seed.product("Cargo bike", "450.00", 5)
    _, customer = seed.customer()
    order = seed.place(customer, bike["id"], 1)  # 450.00: above the auto-approve threshold
    page = open_page()
    log_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("link", name="Approval queue").click()
    row = page.locator(f'li[data-order-id="{order["id"]}"]')
    row.wait_for(timeout=WORKFLOW_SECONDS)  # it appears once validated
    screenshot(page, "admin-queue", shots)
    row.get_by_role("button", name="Approve").click()
    page.get_by_role("status").filter(has_text="approved").wait_for()
    row.wait_for(state="detached")
    assert seed.order(order["id"])["status"] in {"approved", "processing", "completed"}

    page.get_by_role("link", name="Manage products").click()
    page.get_by_label("SKU").fill("LAMP-01")
    page.get_by_label("Name", exact=True).first.fill("Desk lamp")
    page.get_by_label("Price").first.fill("39.90")
    page.get_by_label("Stock", exact=True).fill("12")
    page.get_by_role("button", name="Create product").click()
    page.get_by_role("status").filter(has_text="Created Desk lamp").wait_for()
    screenshot(page, "admin-products", shots)

    lamp = page.locator('li.admin-product[data-sku="LAMP-01"]')
    lamp.get_by_label("Stock change (+/-)").fill("5")
    lamp.get_by_label("Reason").fill("delivery")
    lamp.get_by_role("button", name="Adjust stock").click()
    page.locator('li.admin-product[data-sku="LAMP-01"]', has_text="17 in stock").wait_for()

    customer_email, _ = seed.customer()
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Search by email or name").fill(customer_email)
    page.get_by_role("button", name=f"Promote {customer_email} to admin").click()
    page.get_by_role("status").filter(has_text="promoted to admin").wait_for()
    page.get_by_role("button", name=f"Deactivate {customer_email}").click()
    page.get_by_role("status").filter(has_text="deactivated").wait_for()
    page.get_by_label("Search by email or name").fill("")
    page.get_by_role("table").wait_for()
    screenshot(page, "admin-users", shots)


def test_a_double_click_on_place_order_places_one_order(open_page: Any, seed: Seeder) -> None:
    product = seed.product("Notebook", "4.00", 10)
    email, customer = seed.customer()
    page = open_page()
    log_in(page, email, PASSWORD)
    add_to_cart(page, product, 3)
    page.get_by_role("link", name="Cart").click()
    page.get_by_role("button", name="Place order").dblclick()
    page.get_by_role("heading", name="Order #").wait_for()
    orders = seed.orders(customer)
    assert len(orders) == 1, orders
    assert orders[0]["items"][0]["quantity"] == 3


def test_problems_read_as_messages_and_a_lockout_says_when_to_retry(
    open_page: Any, seed: Seeder, watched: Watched
) -> None:
    email, _ = seed.customer()
    page = open_page()
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not-the-password")
    alert = page.get_by_role("alert")
    for _ in range(5):  # LOGIN_MAX_FAILURES
        with page.expect_response("**/api/v1/auth/login") as answer:
            page.get_by_role("button", name="Log in").click()
        assert answer.value.status == 401
        alert.filter(has_text="Incorrect email or password.").wait_for()
    with page.expect_response("**/api/v1/auth/login") as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 429
    alert.filter(has_text="Too many failed logins").wait_for()
    assert re.search(r"Try again in \d+ (seconds|minutes)\.$", alert.inner_text())
    watched.expected_refusals(401, 429)


def test_admin_subscribes_a_webhook_rotates_its_secret_and_replays_a_delivery(
    open_page: Any, seed: Seeder, shots: Path, receiver: Receiver
) -> None:
    page = open_page()
    log_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description (optional)").fill("Fulfilment")
    page.get_by_label("order.status_changed").uncheck()
    page.get_by_role("button", name="Subscribe").click()
    first_secret = page.locator(".secret code").inner_text()
    assert first_secret.startswith("whsec_")

    product = seed.product("Tea tin", "9.00", 10)
    _, customer = seed.customer()
    seed.place(customer, product["id"], 1)  # order.created: one delivery

    card = page.locator("li[data-webhook-id]", has_text=receiver.url)
    card.get_by_role("button", name="Show deliveries").click()
    card.locator('tr[data-status="succeeded"][data-attempt="1"]').wait_for(timeout=WORKFLOW_SECONDS)
    card.get_by_role("button", name="Rotate secret").click()
    card.get_by_role("status").filter(has_text="Secret rotated").wait_for()
    second_secret = card.locator(".secret code").inner_text()
    assert second_secret.startswith("whsec_") and second_secret != first_secret

    card.get_by_role("button", name="Replay the order.created delivery").click()
    card.get_by_role("status").filter(has_text="Delivery queued again").wait_for()
    wait_until(lambda: len(receiver.received) >= 2, 60, "the replay never reached the target")
    ids = [r["webhook-id"] for r in receiver.received]
    assert len(ids) == 2 and ids[0] == ids[1], receiver.received  # the same event, again
    card.locator('tr[data-status="succeeded"][data-attempt="2"]').wait_for()  # in the log
    screenshot(page, "admin-webhooks", shots)


def test_a_reload_keeps_the_session_through_the_httponly_cookie_alone(
    open_page: Any, seed: Seeder
) -> None:
    email, _ = seed.customer()
    page = open_page()
    log_in(page, email, PASSWORD)
    cookies = {c["name"]: c for c in page.context.cookies()}
    refresh = cookies["refresh_token"]
    assert refresh["httpOnly"] and refresh["sameSite"] == "Strict"
    assert refresh["path"] == "/api/v1/auth"
    assert page.evaluate("document.cookie") == ""  # nothing a script can read
    stored = page.evaluate(
        "JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})"
    )
    assert refresh["value"] not in stored and "eyJ" not in stored  # no token kept
    page.reload()
    page.get_by_role("button", name="Log out").wait_for()  # restored by POST /auth/refresh
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Log in").wait_for()
    assert "refresh_token" not in {c["name"] for c in page.context.cookies()}


def test_a_customer_cancels_an_order_while_it_may_be_cancelled(
    open_page: Any, seed: Seeder
) -> None:
    product = seed.product("Standing desk", "640.00", 3)
    email, customer = seed.customer()
    order = seed.place(customer, product["id"], 1)  # above auto-approval: waits in validated
    page = open_page()
    log_in(page, email, PASSWORD)
    page.get_by_role("link", name="My orders").click()
    page.get_by_role("link", name=f"#{order['id'][:8]}").click()
    page.get_by_label("Reason for cancelling (optional)").fill("Ordered the wrong size")
    page.get_by_role("button", name="Cancel order").click()
    page.locator('h1 [data-status="cancelled"]').wait_for()
    expect(page.get_by_role("button", name="Cancel order")).to_have_count(0)
    page.get_by_role("list", name="History").get_by_text("Ordered the wrong size").wait_for()
    assert seed.order(order["id"])["status"] == "cancelled"
