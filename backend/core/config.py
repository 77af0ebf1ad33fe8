"""Settings: the only place configuration is read (environment and an optional `.env`)."""

from __future__ import annotations

import ipaddress
import json
import secrets
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

WEAK_SECRETS = {"changeme", "secret", "change-me", "dev", "development", "please-change-me"}
MIN_SECRET_BYTES = 32
DEVELOPMENT_WEBHOOK_KEY = "orderflow-development-webhook-key-not-for-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    environment: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key: SecretStr | None = None

    database_url: str = "sqlite+aiosqlite:///./var/orderflow.db"
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    # As long as a statement may run (STATEMENT_TIMEOUT): a request is never refused for the
    # pool while the database would still have answered it.
    db_pool_timeout: float = Field(default=30.0, gt=0)
    db_connect_timeout: float = Field(default=5.0, gt=0)
    db_echo: bool = False

    redis_url: str | None = None
    redis_key_prefix: str = "orderflow:"
    redis_socket_timeout: float = Field(default=1.0, gt=0)
    celery_broker_url: str | None = None
    celery_broker_dir: str = "./var"
    celery_task_always_eager: bool = False

    access_token_ttl_seconds: int = Field(default=900, ge=1)
    refresh_token_ttl_seconds: int = Field(default=604800, ge=1)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_seconds: int = Field(default=900, ge=1)

    rate_limit_enabled: bool = True
    rate_limit_default: str = "100/minute"
    rate_limit_authenticated: str = "600/minute"
    rate_limit_login: str = "5/minute"
    rate_limit_register: str = "10/hour"
    # After a storage (Redis) failure, requests pass unchecked for this long before retrying.
    rate_limit_storage_retry_seconds: float = Field(default=1.0, ge=0)
    rate_limit_error_log_interval: float = Field(default=60.0, gt=0)
    # NoDecode: the environment gives a comma-separated list, not JSON (see _split_csv).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)  # IPs/CIDRs
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1)

    currency: str = "EUR"
    cache_enabled: bool = True
    cache_default_ttl_seconds: float = Field(default=30.0, gt=0)
    cache_default_maxsize: int = Field(default=10_000, ge=1)
    cache_namespaces: dict[str, tuple[float, int]] = Field(default_factory=dict)
    # The users access tokens name, per process (no shared tier): every write to a user drops
    # it everywhere at once; the TTL bounds a drop that could not be broadcast (ADR 0019).
    user_cache_seconds: float = Field(default=1.0, gt=0, le=60)

    order_progression_interval: float = Field(default=120.0, gt=0)
    order_grace_period: float = Field(default=120.0, ge=0)
    order_processing_time: float = Field(default=120.0, ge=0)
    auto_approve_max_total: Decimal = Decimal("1000.00")
    order_max_total: Decimal = Decimal("100000.00")
    # How long POST /orders waits on a concurrent request holding the same Idempotency-Key
    # before answering 409 (PostgreSQL; SQLite serialises writers, so it never waits on one).
    idempotency_wait_seconds: float = Field(default=5.0, gt=0, le=60)
    outbox_poll_interval: float = Field(default=5.0, gt=0)
    workflow_batch_size: int = Field(default=200, ge=1)
    # Orders per batch of the jobs that move set-based (auto_approve, start_processing,
    # complete_processing): one statement each, so a larger batch costs little (ADR 0019).
    workflow_move_batch_size: int = Field(default=1000, ge=1)
    # Their batches in flight at once on PostgreSQL, each on a connection of its own (as if
    # that many workers ran the job); SQLite has one writer, so there it is always 1.
    workflow_move_lanes: int = Field(default=2, ge=1, le=8)
    heartbeat_interval: float = Field(default=30.0, gt=0)
    # Workers (issue 6): batches per job run, the safety nets' patience, and retention.
    workflow_max_batches: int = Field(default=50, ge=1)
    workflow_retry_after: float = Field(default=60.0, gt=0)
    outbox_max_deliveries: int = Field(default=10, ge=1)
    purge_interval: float = Field(default=3600.0, gt=0)
    outbox_retention_days: float = Field(default=7.0, gt=0)

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "orderflow@localhost"
    smtp_starttls: bool = True
    smtp_timeout: float = Field(default=10.0, gt=0)  # seconds per SMTP socket operation
    email_max_attempts: int = Field(default=6, ge=1)
    email_retry_base_seconds: float = Field(default=30.0, gt=0)  # doubles per attempt, <= 1 h
    email_delivery_interval: float = Field(default=30.0, gt=0)  # Beat: deliver due emails

    # The notification stream (ADR 0015).
    sse_ping_seconds: float = Field(default=15.0, gt=0)
    sse_recheck_seconds: float = Field(default=15.0, gt=0)
    sse_max_connection_seconds: float = Field(default=3600.0, gt=0)
    sse_max_streams_per_user: int = Field(default=5, ge=1)
    sse_tail_interval: float = Field(default=0.5, gt=0)
    sse_retry_ms: int = Field(default=3000, ge=0)
    stream_ticket_ttl_seconds: float = Field(default=60.0, gt=0)

    webhook_allow_private_targets: bool = False
    webhook_max_attempts: int = Field(default=6, ge=1)
    # Encrypts endpoint secrets at rest (ADR 0016); defaults to SECRET_KEY.
    webhook_secret_key: SecretStr | None = None
    webhook_secret_overlap: float = Field(default=86400.0, ge=0)  # both secrets sign (s)
    webhook_backoff_base: float = Field(default=30.0, gt=0)
    webhook_backoff_factor: float = Field(default=4.0, ge=1)
    webhook_backoff_max: float = Field(default=21600.0, gt=0)
    webhook_disable_after: float = Field(default=432000.0, gt=0)  # failing this long: disabled
    webhook_poll_interval: float = Field(default=10.0, gt=0)
    webhook_connect_timeout: float = Field(default=5.0, gt=0)
    webhook_timeout: float = Field(default=15.0, gt=0)
    webhook_concurrency: int = Field(default=50, ge=1)
    webhook_per_endpoint_concurrency: int = Field(default=5, ge=1)

    first_admin_email: str | None = None
    first_admin_password: SecretStr | None = None

    log_level: str = "INFO"
    log_format: Literal["console", "json"] | None = None
    worker_metrics_port: int = Field(default=9808, ge=0, le=65535)
    api_workers: int = Field(default=1, ge=1)  # uvicorn processes of `python -m backend serve`
    prometheus_multiproc_dir: str | None = None  # default for serve: ./var/prometheus/api
    readiness_timeout: float = Field(default=2.0, gt=0)
    problem_type_base: str = "https://orderflow.dev/problems/"

    @field_validator("trusted_proxies", "cors_origins", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                return json.loads(stripped)  # a JSON list is accepted too
            return [item.strip() for item in stripped.split(",") if item.strip()]
        return value

    @field_validator(
        "rate_limit_default", "rate_limit_authenticated", "rate_limit_login", "rate_limit_register"
    )
    @classmethod
    def _limits_notation(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a rate limit like '100/minute'") from error
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as error:
                raise ValueError(f"{entry!r} is not an IP address or CIDR") from error
        return value

    @field_validator("redis_url", "celery_broker_url", "smtp_host", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            if self.secret_key is None:
                # A random key per start: tokens do not survive a restart in development.
                self.secret_key = SecretStr(secrets.token_urlsafe(48))
            return self
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if not key:
            raise ValueError(
                "SECRET_KEY is required when ENVIRONMENT=production: "
                "set it to a random string of at least 32 bytes "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
            )
        if len(key.encode()) < MIN_SECRET_BYTES or key.lower() in WEAK_SECRETS:
            raise ValueError(
                f"SECRET_KEY is too weak for production: it must be at least {MIN_SECRET_BYTES} "
                "bytes of random data, not a default or a word."
            )
        webhook_key = self.webhook_secret_key.get_secret_value() if self.webhook_secret_key else key
        if len(webhook_key.encode()) < MIN_SECRET_BYTES or webhook_key.lower() in WEAK_SECRETS:
            raise ValueError(
                f"WEBHOOK_SECRET_KEY is too weak for production: at least {MIN_SECRET_BYTES} "
                "bytes of random data (or leave it unset to derive the key from SECRET_KEY)."
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("json" if self.is_production else "console")

    @property
    def broker_url(self) -> str:
        """Celery broker: explicit, else Redis, else a server-less SQLite transport."""
        if self.celery_broker_url:
            return self.celery_broker_url
        if self.redis_url:
            return self.redis_url
        return f"sqla+sqlite:///{self.celery_broker_dir.rstrip('/')}/celery-broker.sqlite"

    @property
    def jwt_secret(self) -> str:
        assert self.secret_key is not None  # set by the validator
        return self.secret_key.get_secret_value()

    @property
    def webhook_key(self) -> str:
        """What the webhook secrets' encryption key is derived from: WEBHOOK_SECRET_KEY, else
        SECRET_KEY in production, else a fixed development key. Not SECRET_KEY outside
        production: there it is drawn anew at each start, and secrets stored under one start's
        key would not decrypt after a restart (ADR 0016)."""
        if self.webhook_secret_key is not None:
            return self.webhook_secret_key.get_secret_value()
        if self.is_production:
            return self.jwt_secret
        return DEVELOPMENT_WEBHOOK_KEY

    def cache_policy(self, namespace: str) -> tuple[float, int]:
        if namespace == "users":  # backend.domain.users.USERS_NS; never the catalogue's TTL
            return self.user_cache_seconds, self.cache_default_maxsize
        return self.cache_namespaces.get(
            namespace, (self.cache_default_ttl_seconds, self.cache_default_maxsize)
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
