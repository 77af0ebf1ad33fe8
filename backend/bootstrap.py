"""The composition root: the one module that knows every adapter.

`build_container(settings)` wires adapters from settings; the API lifespan and
each worker process call it once and close it on shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

import httpx
from celery import Celery
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.core.config import Settings
from backend.core.logging import get_logger
from backend.core.metrics import (
    DEPENDENCY_ERRORS,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PENDING,
    READINESS_CHECKS,
)
from backend.core.tasks import DELIVER_DUE_EMAILS, DELIVER_WEBHOOKS, RELAY_OUTBOX, SEND_EMAIL
from backend.domain.clock import SystemClock
from backend.domain.email import RetrySchedule
from backend.domain.errors import DomainError
from backend.domain.notifications import NotificationSignal
from backend.domain.ports import Clock
from backend.domain.users import LoginAttempts
from backend.domain.webhooks import RetryPolicy
from backend.infrastructure import health, pubsub
from backend.infrastructure.cache import TieredCache, build_cache
from backend.infrastructure.db.engine import FairCheckout, create_engine
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.infrastructure.email import JinjaEmailRenderer, SmtpConfig, build_sender
from backend.infrastructure.messaging.celery import (
    CeleryTaskPublisher,
    make_celery,
)
from backend.infrastructure.messaging.kicks import DebouncedKick
from backend.infrastructure.notifications import (
    LocalNotificationSignal,
    NotificationHub,
    RedisNotificationSignal,
    RedisWakeListener,
    tail_notifications,
)
from backend.infrastructure.observability import metrics_exposition
from backend.infrastructure.pubsub import subscriber_client
from backend.infrastructure.ratelimit import RateLimiter, build_rate_limiter
from backend.infrastructure.security import build_login_attempts
from backend.infrastructure.security.passwords import BcryptHasher
from backend.infrastructure.security.tokens import JoseTokenIssuer
from backend.infrastructure.webhooks.cipher import FernetSecretCipher
from backend.infrastructure.webhooks.sender import HttpxWebhookSender
from backend.infrastructure.webhooks.signing import StandardWebhooksSigner
from backend.infrastructure.webhooks.targets import AddressGuard
from backend.services.auth import AuthPolicy, AuthService
from backend.services.batches import BatchBudget
from backend.services.catalog import CatalogService
from backend.services.email import EmailDelivery, EmailPolicy
from backend.services.event_recorder import EventRecorder
from backend.services.events import EventConsumer, EventDispatcher
from backend.services.maintenance import Maintenance
from backend.services.notification_consumers import (
    EmailNotificationConsumer,
    InAppNotificationConsumer,
)
from backend.services.notifications import NotificationService, StreamPolicy
from backend.services.order_workflow import OrderWorkflow, WorkflowPolicy
from backend.services.orders import OrderPolicy, OrderService
from backend.services.outbox import OutboxRelay, RelayPolicy
from backend.services.progression import OrderValidationConsumer, WorkflowJobs
from backend.services.users import UserService
from backend.services.webhook_delivery import WebhookDeliverer
from backend.services.webhooks import WebhookAdmin, WebhookConsumer, WebhookPolicy

log = get_logger(__name__)

STOP_GRACE_SECONDS = 5.0


def create_celery(settings: Settings) -> Celery:
    return make_celery(
        settings.broker_url,
        always_eager=settings.celery_task_always_eager,
        key_prefix=settings.redis_key_prefix,
    )


def render_metrics(extra: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The /metrics payload: this process (plus `extra`, e.g. an app's HTTP metrics), or
    every worker process in multiprocess mode."""
    return metrics_exposition(extra)


def smtp_config(settings: Settings) -> SmtpConfig | None:
    """None without SMTP_HOST: mail is written to the log (embedded mode)."""
    if not settings.smtp_host:
        return None
    password = settings.smtp_password
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        user=settings.smtp_user,
        password=password.get_secret_value() if password else None,
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout,
    )


def create_redis(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_socket_timeout,
        health_check_interval=15,
        decode_responses=False,
    )


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    redis: Redis | None
    http: httpx.AsyncClient
    celery: Celery
    tasks: CeleryTaskPublisher
    clock: Clock = field(default_factory=SystemClock)
    rate_limiter: RateLimiter | None = None  # None when RATE_LIMIT_ENABLED=false
    _background: list[asyncio.Task[Any]] = field(default_factory=list)
    # Set by `aclose()`: loops that touch the database finish their statement and return
    # instead of being cancelled mid-query (an aiosqlite thread would then answer a closed
    # event loop, a driver's connection would be dropped instead of returned).
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _graceful: list[asyncio.Task[Any]] = field(default_factory=list)
    _kick_failing: set[str] = field(default_factory=set)  # task names whose kick is failing

    def uow(self) -> SqlUnitOfWork:
        """The unit-of-work factory every service holds (ADR 0014)."""
        return SqlUnitOfWork(self.engine, self.webhook_cipher, self.checkout_gate)

    @cached_property
    def checkout_gate(self) -> FairCheckout | None:
        """PostgreSQL's pooled connections handed out in arrival order (docs/adr/0019);
        SQLite's units queue at BEGIN IMMEDIATE instead."""
        if self.engine.dialect.name != "postgresql":
            return None
        pool = self.settings.db_pool_size + self.settings.db_max_overflow
        return FairCheckout(pool, self.settings.db_pool_timeout)

    # --- catalogue --------------------------------------------------------------------
    @cached_property
    def cache(self) -> TieredCache:
        """The tiered read cache: L1 + Redis L2 in full mode, L1 only in embedded mode.
        Its invalidation listener runs as a background task (`cache.listen()`)."""
        return build_cache(self.settings)

    @cached_property
    def catalog(self) -> CatalogService:
        return CatalogService(self.uow, self.cache, self.clock, currency=self.settings.currency)

    # --- identity ---------------------------------------------------------------------
    @cached_property
    def tokens(self) -> JoseTokenIssuer:
        """Issues and verifies access tokens: `container.tokens.decode_access(token)`."""
        return JoseTokenIssuer(
            self.settings.jwt_secret, self.settings.access_token_ttl_seconds, self.clock
        )

    @cached_property
    def passwords(self) -> BcryptHasher:
        return BcryptHasher(self.settings.bcrypt_rounds)

    @cached_property
    def login_attempts(self) -> LoginAttempts:
        return build_login_attempts(self.settings, self.redis)

    def auth_service(self) -> AuthService:
        return AuthService(
            self.uow,
            self.passwords,
            self.tokens,
            self.login_attempts,
            self.clock,
            AuthPolicy(refresh_ttl_seconds=self.settings.refresh_token_ttl_seconds),
            self.cache,
        )

    def user_service(self) -> UserService:
        return UserService(self.uow, self.clock, self.cache)

    async def start_identity(self) -> None:
        """API start-up: warm the dummy hash in the background, then the first admin from
        FIRST_ADMIN_EMAIL/FIRST_ADMIN_PASSWORD (idempotent; never fatal to start-up)."""
        self.spawn(self.passwords.warm_up(), name="bcrypt-warm-up")
        email, password = self.settings.first_admin_email, self.settings.first_admin_password
        if not email or password is None:
            return
        try:
            result = await self.auth_service().ensure_first_admin(
                email, password.get_secret_value()
            )
        except DomainError as error:  # e.g. database down, or a password the policy refuses
            log.error("first_admin_failed", error=error.detail)
            return
        log_method = log.error if result.outcome == "refused" else log.info
        log_method("first_admin", outcome=result.outcome, user_id=result.user.id)

    async def kick_relay(self) -> None:
        """Best effort: ask a worker to relay the outbox now; Beat's poll is the safety net.
        The `EventRecorder` registers it with `on_commit` of every unit that wrote events."""
        await self._kick(RELAY_OUTBOX, self.settings.outbox_poll_interval)

    async def kick_webhooks(self) -> None:
        """Best effort: ask a worker to send due webhook deliveries now (Beat polls too)."""
        await self._kick(DELIVER_WEBHOOKS, self.settings.webhook_poll_interval)

    async def _kick(self, task: str, expires: float) -> None:
        """One quick reconnect at most (a request never waits on a dead broker), and a kick
        older than the poll interval is dropped: the poll has covered it by then."""
        try:
            await self.tasks.publish(
                task,
                expires=expires,
                retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.1},
            )
        except Exception as error:  # the broker is down: the work waits in the database
            DEPENDENCY_ERRORS.labels(dependency="broker").inc()
            if task not in self._kick_failing:  # one line per outage, not one per request
                log.warning("kick_failed", task=task, error=f"{type(error).__name__}: {error}")
            self._kick_failing.add(task)
        else:
            if task in self._kick_failing:
                log.info("kick_recovered", task=task)
            self._kick_failing.discard(task)

    # --- orders and the workflow ------------------------------------------------------
    @cached_property
    def events(self) -> EventRecorder:
        """How every service writes an event: outbox row, metrics and relay kick on commit."""
        return EventRecorder(self.relay_kicks)

    @cached_property
    def relay_kicks(self) -> DebouncedKick:
        """`kick_relay`, at most once per KICK_INTERVAL however many commits ask: one broker
        message then stands for a burst of placements (docs/adr/0019)."""
        return DebouncedKick(self.kick_relay)

    @cached_property
    def orders(self) -> OrderService:
        policy = OrderPolicy(idempotency_wait_seconds=self.settings.idempotency_wait_seconds)
        return OrderService(self.uow, self.clock, self.events, self.cache, policy)

    @cached_property
    def order_workflow(self) -> OrderWorkflow:
        return OrderWorkflow(self.uow, self.clock, self.events, self.cache, self.workflow_policy())

    @cached_property
    def workflow_jobs(self) -> WorkflowJobs:
        return WorkflowJobs(self.uow, self.clock, self.order_workflow)

    @cached_property
    def maintenance(self) -> Maintenance:
        return Maintenance(self.uow, self.clock, self.workflow_policy())

    def workflow_policy(self) -> WorkflowPolicy:
        s = self.settings
        return WorkflowPolicy(
            batch_size=s.workflow_batch_size,
            move_batch_size=s.workflow_move_batch_size,
            move_lanes=s.workflow_move_lanes if self.engine.dialect.name == "postgresql" else 1,
            max_batches=s.workflow_max_batches,
            grace_period=timedelta(seconds=s.order_grace_period),
            processing_time=timedelta(seconds=s.order_processing_time),
            auto_approve_max_total=s.auto_approve_max_total,
            max_total=s.order_max_total,
            validation_retry_after=timedelta(seconds=s.workflow_retry_after),
            outbox_retention=timedelta(days=s.outbox_retention_days),
        )

    # --- outbox and events ------------------------------------------------------------
    @cached_property
    def outbox_relay(self) -> OutboxRelay:
        return OutboxRelay(self.uow, self.event_dispatcher, self.clock, self.relay_policy())

    def relay_policy(self) -> RelayPolicy:
        s = self.settings
        return RelayPolicy(
            batch_size=s.workflow_batch_size,
            max_batches=s.workflow_max_batches,
            redeliver_after=timedelta(seconds=s.workflow_retry_after),
            max_deliveries=s.outbox_max_deliveries,
        )

    def event_consumers(self) -> tuple[EventConsumer, ...]:
        """Every consumer of relayed events; each area adds its own here (one line)."""
        return (
            OrderValidationConsumer(self.order_workflow, self.clock),
            WebhookConsumer(self.clock, self.webhook_policy(), self.kick_webhooks),
            *self.notification_consumers(),
        )

    # --- webhooks (ADR 0016) -------------------------------------------------------------
    @cached_property
    def webhook_cipher(self) -> FernetSecretCipher:
        return FernetSecretCipher(self.settings.webhook_key)

    @cached_property
    def webhook_guard(self) -> AddressGuard:
        return AddressGuard(allow_private=self.settings.webhook_allow_private_targets)

    @cached_property
    def webhook_sender(self) -> HttpxWebhookSender:
        s = self.settings
        return HttpxWebhookSender(
            self.webhook_guard,
            connect_timeout=s.webhook_connect_timeout,
            total_timeout=s.webhook_timeout,
        )

    def webhook_policy(self) -> WebhookPolicy:
        s = self.settings
        return WebhookPolicy(
            retry=RetryPolicy(
                max_attempts=s.webhook_max_attempts,
                base_delay=timedelta(seconds=s.webhook_backoff_base),
                factor=s.webhook_backoff_factor,
                max_delay=timedelta(seconds=s.webhook_backoff_max),
            ),
            secret_overlap=timedelta(seconds=s.webhook_secret_overlap),
            disable_after=timedelta(seconds=s.webhook_disable_after),
            concurrency=s.webhook_concurrency,
            per_endpoint=s.webhook_per_endpoint_concurrency,
            lease=timedelta(seconds=s.webhook_timeout * 4),
        )

    @cached_property
    def webhooks(self) -> WebhookAdmin:
        return WebhookAdmin(
            self.uow, self.clock, self.webhook_policy(), self.webhook_guard, self.kick_webhooks
        )

    @cached_property
    def webhook_deliverer(self) -> WebhookDeliverer:
        return WebhookDeliverer(
            self.uow,
            self.clock,
            self.webhook_policy(),
            self.webhook_sender,
            StandardWebhooksSigner(),
        )

    @cached_property
    def event_dispatcher(self) -> EventDispatcher:
        return EventDispatcher(self.uow, self.clock, self.event_consumers())

    # --- notifications (ADR 0015) -----------------------------------------------------
    @cached_property
    def notification_hub(self) -> NotificationHub:
        """This process's open streams (the API's); rung by `start_wakeups()`'s task."""
        return NotificationHub(self.settings.sse_max_streams_per_user)

    @cached_property
    def notification_signal(self) -> NotificationSignal:
        """How the worker tells every API process of a committed notification."""
        if self.redis is None:
            return LocalNotificationSignal()  # the API processes tail the table
        return RedisNotificationSignal(self.redis, self.settings.redis_key_prefix)

    @cached_property
    def notifications(self) -> NotificationService:
        s = self.settings
        policy = StreamPolicy(
            recheck_seconds=s.sse_recheck_seconds,
            max_lifetime=timedelta(seconds=s.sse_max_connection_seconds),
            ticket_ttl=timedelta(seconds=s.stream_ticket_ttl_seconds),
        )
        return NotificationService(self.uow, self.clock, policy)

    def email_policy(self) -> EmailPolicy:
        s = self.settings
        return EmailPolicy(
            message_id_domain=s.smtp_from.rpartition("@")[2] or "orderflow.localhost",
            retry=RetrySchedule(
                max_attempts=s.email_max_attempts,
                base=timedelta(seconds=s.email_retry_base_seconds),
            ),
            lease=timedelta(seconds=max(60.0, s.smtp_timeout * 10)),
            budget=BatchBudget(s.workflow_batch_size, s.workflow_max_batches),
        )

    @cached_property
    def email_delivery(self) -> EmailDelivery:
        return EmailDelivery(
            self.uow, self.clock, build_sender(smtp_config(self.settings)), self.email_policy()
        )

    async def kick_emails(self, send_ids: Sequence[str]) -> None:
        """After the commit that recorded these mails: with SMTP_HOST, one task per mail
        (slow receivers then wait in parallel across the pool); without it a mail is only a
        log line, and one run of the due-emails job writes the whole batch (ADR 0020)."""
        if self.settings.smtp_host is None:
            await self._kick(DELIVER_DUE_EMAILS, self.settings.email_delivery_interval)
            return
        for send_id in send_ids:
            await self.kick_email(send_id)

    async def kick_email(self, send_id: str, countdown: float | None = None) -> None:
        """Best effort: ask a worker to send this mail (now, or after `countdown` seconds);
        the due-emails job is the safety net."""
        try:
            await self.tasks.publish(
                SEND_EMAIL,
                send_id,
                countdown=countdown,
                retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.1},
            )
        except Exception as error:  # the broker is down: the send waits for the job
            DEPENDENCY_ERRORS.labels(dependency="broker").inc()
            log.warning("email_kick_failed", error=f"{type(error).__name__}: {error}")

    def notification_consumers(self) -> tuple[EventConsumer, ...]:
        return (
            InAppNotificationConsumer(self.clock, self.notification_signal),
            EmailNotificationConsumer(
                self.clock, JinjaEmailRenderer(), self.email_policy(), self.kick_emails
            ),
        )

    def start_wakeups(self) -> None:
        """API start-up: the one source that rings this process's streams: a Redis
        subscriber in full mode (cancelled at close, like the cache's listener), a tail of
        the notifications table in embedded mode (it finishes its query and returns)."""
        s = self.settings
        hub = self.notification_hub
        if s.redis_url is None:
            tail = tail_notifications(hub, self.uow, s.sse_tail_interval, self._stopping)
            self.spawn(tail, name="notification-tail", returns_when_stopping=True)
            return
        url = s.redis_url
        listener = RedisWakeListener(hub, s.redis_key_prefix)
        subscribe = pubsub.listen(listener, lambda: subscriber_client(url, s.redis_socket_timeout))
        self.spawn(subscribe, name="notification-wakeups")

    async def watch_outbox_backlog(self, interval: float | None = None) -> None:
        """API background task: keep the outbox backlog gauges fresh (a cheap indexed
        count every OUTBOX_POLL_INTERVAL; a failed read keeps the last values)."""
        period = interval or self.settings.outbox_poll_interval
        while True:
            try:
                count, age = await self.outbox_relay.backlog()
            except Exception as error:  # the database may be down; readiness reports that
                log.debug("outbox_backlog_unavailable", error=type(error).__name__)
            else:
                OUTBOX_PENDING.set(count)
                OUTBOX_OLDEST_AGE.set(age)
            if await self._stopped_within(period):
                return

    async def _stopped_within(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True as soon as the container is closing."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def readiness(self) -> dict[str, dict[str, Any]]:
        timeout = self.settings.readiness_timeout
        checks = {
            "database": health.database_check(self.engine),
            "redis": health.redis_check(self.redis) if self.redis is not None else None,
            "broker": health.broker_check(self.celery),
        }
        results = await asyncio.gather(*(health.run_check(c, timeout) for c in checks.values()))
        report = dict(zip(checks, results, strict=True))
        for name, result in report.items():  # for the "readiness failing" alert
            if result["status"] != "skipped":
                READINESS_CHECKS.labels(check=name).set(1 if result["status"] == "ok" else 0)
        return report

    async def ping_database(self) -> None:
        await health.database_check(self.engine)()

    def spawn(self, coro: Any, name: str, *, returns_when_stopping: bool = False) -> None:
        """Run `coro` until `aclose()`: cancelled then, or, with `returns_when_stopping`,
        given up to STOP_GRACE_SECONDS to return by itself (it watches `_stopping`)."""
        task = asyncio.create_task(coro, name=name)
        self._background.append(task)
        if returns_when_stopping:
            self._graceful.append(task)

    async def aclose(self) -> None:
        self._stopping.set()
        if "notification_hub" in self.__dict__:
            self.notification_hub.close()  # open streams end
        if self._graceful:
            await asyncio.wait(self._graceful, timeout=STOP_GRACE_SECONDS)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.http.aclose()
        if "webhook_sender" in self.__dict__:
            await self.webhook_sender.aclose()
        if self.rate_limiter is not None:
            await self.rate_limiter.aclose()
        if "passwords" in self.__dict__:
            self.passwords.close()
        if "cache" in self.__dict__:
            await self.cache.aclose()
        if "relay_kicks" in self.__dict__:
            await self.relay_kicks.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


async def build_container(settings: Settings, *, celery: Celery | None = None) -> Container:
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        connect_timeout=settings.db_connect_timeout,
        echo=settings.db_echo,
    )
    celery_app = celery or create_celery(settings)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)
    redis = create_redis(settings)
    return Container(
        settings=settings,
        engine=engine,
        redis=redis,
        http=http,
        celery=celery_app,
        tasks=CeleryTaskPublisher(celery_app),
        rate_limiter=build_rate_limiter(settings, redis),
    )
