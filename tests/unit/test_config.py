import pytest
from pydantic import ValidationError

from backend.core.config import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_development_generates_a_random_secret_per_start() -> None:
    first, second = settings(), settings()
    assert len(first.jwt_secret) >= 32
    assert first.jwt_secret != second.jwt_secret


@pytest.mark.parametrize(
    ("secret", "message"),
    [(None, "SECRET_KEY is required"), ("short", "too weak"), ("changeme", "too weak")],
)
def test_production_refuses_missing_or_weak_secret(secret: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(environment="production", secret_key=secret)


def test_production_accepts_a_strong_secret_and_logs_json() -> None:
    s = settings(environment="production", secret_key="x" * 40)
    assert s.effective_log_format == "json"
    assert s.is_production


def test_lists_accept_comma_separated_values() -> None:
    s = settings(cors_origins="https://a.example, https://b.example", trusted_proxies="10.0.0.1")
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.trusted_proxies == ["10.0.0.1"]


def test_broker_defaults_to_a_serverless_transport_then_redis() -> None:
    assert settings().broker_url.startswith("sqla+sqlite:///")
    assert settings(redis_url="redis://h:6379/0").broker_url == "redis://h:6379/0"
    explicit = settings(redis_url="redis://h:6379/0", celery_broker_url="amqp://x")
    assert explicit.broker_url == "amqp://x"
    assert settings(redis_url="").redis_url is None


def test_the_webhook_key_is_stable_across_development_starts_and_separate_when_set() -> None:
    assert settings().webhook_key == settings().webhook_key  # SECRET_KEY differs each start
    assert settings(webhook_secret_key="w" * 40).webhook_key == "w" * 40
    production = settings(environment="production", secret_key="x" * 40)
    assert production.webhook_key == "x" * 40


def test_production_refuses_a_weak_webhook_key() -> None:
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET_KEY is too weak"):
        settings(environment="production", secret_key="x" * 40, webhook_secret_key="short")
