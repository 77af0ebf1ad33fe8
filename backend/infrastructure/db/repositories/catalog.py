"""SQL repository of products. (Filled in by the catalogue issue.)"""

from backend.infrastructure.db.repositories.base import SqlRepository


class SqlProductRepository(SqlRepository):
    pass
