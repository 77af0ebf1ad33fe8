"""The /api/v1 router: every area's routes are included here."""

from fastapi import APIRouter

from backend.api.v1 import auth, probes, users
from backend.api.v1 import orders as orders_routes
from backend.api.v1 import products as products_routes

api_router = APIRouter()
api_router.include_router(probes.router)
# Before the others: FastAPI matches included routers in order, and GET /products/{id} is
# the hottest route (bench/scenario_products).
api_router.include_router(products_routes.router)
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(orders_routes.router)
