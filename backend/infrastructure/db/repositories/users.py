"""SQL repositories of users and refresh tokens. (Filled in by the identity issue.)"""

from backend.infrastructure.db.repositories.base import SqlRepository


class SqlUserRepository(SqlRepository):
    pass


class SqlRefreshTokenRepository(SqlRepository):
    pass
