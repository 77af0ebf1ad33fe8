"""structlog configuration: JSON in production, console in development, secrets redacted.

Standard-library loggers (uvicorn, celery, sqlalchemy) are routed through the same
processors, so every line of the API and the worker has one shape.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SENSITIVE_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "secret",
        "secret_key",
        "cookie",
        "set-cookie",
        "smtp_password",
    }
)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
        structlog.processors.StackInfoRenderer(),
    ]


def _renderer(fmt: str) -> Any:
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False)


def build_formatter(fmt: str = "console") -> logging.Formatter:
    """The one formatter of every handler; named by `logging_config` so that dict is plain data."""
    renderer = _renderer(fmt)
    final: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if fmt == "json":
        final.append(structlog.processors.format_exc_info)
    final.append(renderer)
    return structlog.stdlib.ProcessorFormatter(
        processors=final, foreign_pre_chain=_shared_processors()
    )


def logging_config(level: str = "INFO", fmt: str = "console") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict, JSON-serialisable: `python -m backend serve` hands it
    to uvicorn (`--log-config`) so that even uvicorn's start-up lines share our format."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structlog": {"()": f"{__name__}.build_formatter", "fmt": fmt}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "structlog"}},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn's own handlers (plain text) are dropped: its lines go through ours.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"level": level.upper()},
            # uvicorn's own access log is replaced by our request log line.
            "uvicorn.access": {"handlers": [], "propagate": False},
            "sqlalchemy.engine": {"level": "WARNING"},
            # At DEBUG it logs every statement with its parameters (password hashes, emails).
            "aiosqlite": {"level": "WARNING"},
        },
    }


ACCESS_LOGGER = "orderflow.access"


class _Silent:
    """The access logger when its level is off: every call is a no-op."""

    def info(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_access: Any = _Silent()


def _build_access_logger(level: str, fmt: str) -> Any:
    """The request log line's own logger: the same fields, format and stream as every other
    line (the stream the root handler writes to), without the standard-library round trip
    (a LogRecord, the caller lookup, the handler lock and the formatter's second processor
    pass), which cost several times the rest of a cached read (docs/adr/0019)."""
    if logging.getLevelName(level.upper()) > logging.INFO:
        return _Silent()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    stream = handlers[0].stream if handlers else sys.stderr
    return structlog.wrap_logger(
        structlog.WriteLogger(stream),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            _renderer(fmt),
        ],
        wrapper_class=structlog.BoundLogger,
        cache_logger_on_first_use=True,
    ).bind(logger=ACCESS_LOGGER)


def access_logger() -> Any:
    """Where the access line goes (`request`, one per HTTP request); set by
    `configure_logging`."""
    return _access


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    structlog.configure(
        processors=[
            # First: a call below its logger's level is dropped before any other processor
            # runs (the access line costs nothing at LOG_LEVEL=WARNING).
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(logging_config(level, fmt))
    global _access
    _access = _build_access_logger(level, fmt)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
