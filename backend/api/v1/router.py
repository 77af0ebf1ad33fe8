"""The /api/v1 routers: every area's routes, in the order the app matches them."""

from fastapi import APIRouter

from backend.api.v1 import auth, notifications, probes, users, webhooks
from backend.api.v1 import orders as orders_routes
from backend.api.v1 import products as products_routes

# Each is included into the app directly (one level of nesting, not two: FastAPI matches an
# included router's routes through one more layer per level). Products come right after the
# probes because GET /products/{id} is the hottest route (make bench scenario 1).
routers: list[APIRouter] = [
    probes.router,
    products_routes.router,
    auth.router,
    users.router,
    orders_routes.router,
    webhooks.router,
    notifications.router,
]
