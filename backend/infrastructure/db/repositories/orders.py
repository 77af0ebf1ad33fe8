"""SQL repositories of orders and idempotency keys. (Filled in by the orders issue.)"""

from backend.infrastructure.db.repositories.base import SqlRepository


class SqlOrderRepository(SqlRepository):
    pass


class SqlIdempotencyRepository(SqlRepository):
    pass
