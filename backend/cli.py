"""`python -m backend <command>`: run everything, migrate, administer."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from backend.core.config import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 10
PR_SET_PDEATHSIG = 1


def migrate(revision: str = "head", database_url: str | None = None) -> None:
    """Apply migrations to `database_url` (default: DATABASE_URL)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini")) if (ROOT / "alembic.ini").exists() else Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["database_url"] = database_url or get_settings().database_url
    command.upgrade(config, revision)


def _die_with_parent() -> None:
    """Children get SIGTERM if the supervisor itself is killed: no orphans."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def uvicorn_command(settings: Settings, log_config: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "backend.api.app:create_app",
        "--factory",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.api_workers),
        "--log-config",
        str(log_config),
        "--no-access-log",
        # The client address is ours to resolve, from TRUSTED_PROXIES only (ADR 0011);
        # uvicorn would otherwise believe X-Forwarded-For from any loopback peer.
        "--no-proxy-headers",
        "--timeout-graceful-shutdown",
        "8",
    ]


def share_signing_key(settings: Settings) -> None:
    """Hand this start's signing key to every process started from here on.

    Without SECRET_KEY, development draws a random key per process: two uvicorn workers (or
    an API restarted by the supervisor) would each refuse the other's tokens. The key drawn
    here, once, travels by environment (never argv, never a log line) to all of them.
    """
    if "SECRET_KEY" not in os.environ:
        os.environ["SECRET_KEY"] = settings.jwt_secret


def serve() -> None:
    """The API alone (containers, and `run`'s API process): prepare, then exec uvicorn.

    Every API process writes its metrics to PROMETHEUS_MULTIPROC_DIR (one worker or many, the
    same code path); the directory is emptied here, before any worker starts (ADR 0012).
    """
    from backend.core.logging import logging_config
    from backend.infrastructure.observability import MULTIPROC_ENV, prepare_multiproc_dir

    settings = get_settings()
    share_signing_key(settings)
    default_dir = Path(settings.celery_broker_dir) / "prometheus" / "api"
    directory = prepare_multiproc_dir(
        Path(settings.prometheus_multiproc_dir or default_dir).resolve()
    )
    os.environ[MULTIPROC_ENV] = str(directory)
    # Not a *.db file: the metrics merge ignores it, and the directory is ours and writable.
    log_config = directory / "uvicorn-logging.json"
    log_config.write_text(
        json.dumps(logging_config(settings.log_level, settings.effective_log_format))
    )
    command = uvicorn_command(settings, log_config)
    os.execv(command[0], command)  # noqa: S606 (argv list, no shell)


def _commands() -> dict[str, list[str]]:
    settings = get_settings()
    py = sys.executable
    celery = [py, "-m", "celery", "-A", "worker.celery_app"]
    var = Path(settings.celery_broker_dir)
    var.mkdir(parents=True, exist_ok=True)
    return {
        "api": [py, "-m", "backend", "serve"],
        "worker": [
            *celery,
            "worker",
            "--loglevel",
            settings.log_level,
            "--queues",
            "default,workflow,notifications",
            "--concurrency",
            "2",
            "--hostname",
            f"worker-{os.getpid()}@%h",
        ],
        "beat": [
            *celery,
            "beat",
            "--loglevel",
            settings.log_level,
            "--schedule",
            str(var / "celerybeat-schedule"),
            "--pidfile=",
        ],
    }


def run() -> int:
    """Start the API, a Celery worker and Beat; restart any that dies (with backoff), and
    stop them all on SIGINT/SIGTERM (ADR 0017)."""
    from backend.supervisor import Supervisor

    share_signing_key(get_settings())  # the API restarted later keeps accepting old tokens
    supervisor = Supervisor(
        _commands(), cwd=ROOT, stop_grace=STOP_GRACE_SECONDS, preexec_fn=_die_with_parent
    )
    return supervisor.run()


def _read_password(stream: TextIO) -> str:
    """From a prompt (typed twice) on a terminal, else the first line of stdin. Never a flag:
    flags end up in shell history and in `ps` output."""
    if stream.isatty():
        import getpass

        password = getpass.getpass("Password for the admin: ")
        if getpass.getpass("Repeat it: ") != password:
            raise SystemExit("orderflow: the passwords differ; nothing changed")
        return password
    return stream.readline().rstrip("\r\n")


def create_admin(email: str, stream: TextIO = sys.stdin) -> int:
    """Create an admin, or promote, re-activate and re-password an existing account."""
    import asyncio

    from pydantic import EmailStr, TypeAdapter, ValidationError

    from backend.bootstrap import build_container
    from backend.domain.errors import DomainError, ErrorKind

    try:
        email = TypeAdapter(EmailStr).validate_python(email)
    except ValidationError:
        print(f"orderflow: not a valid email address: {email!r}", file=sys.stderr)
        return 2
    password = _read_password(stream)

    async def provision() -> str:
        container = await build_container(get_settings())
        try:
            result = await container.auth_service().create_admin(email, password)
        finally:
            await container.aclose()
        return f"admin {result.user.email} {result.outcome} (id {result.user.id})"

    try:
        print(f"orderflow: {asyncio.run(provision())}")
    except DomainError as error:  # a refused password, or an unreachable/unmigrated database
        print(f"orderflow: {error.detail}", file=sys.stderr)
        return 2 if error.kind is ErrorKind.INVALID else 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate, then start the API, a Celery worker and Beat")
    sub.add_parser("serve", help="start the API alone (uvicorn, API_WORKERS processes)")
    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("revision", nargs="?", default="head")
    admin = sub.add_parser(
        "create-admin",
        help="create (or promote) an administrator; the password is prompted, or read from stdin",
    )
    admin.add_argument("--email", required=True)
    args = parser.parse_args(argv)
    if args.command == "create-admin":
        return create_admin(args.email)
    if args.command == "migrate":
        migrate(args.revision)
        return 0
    if args.command == "serve":
        serve()  # replaces this process with uvicorn
    if args.command == "run":
        migrate()
        return run()
    parser.error(f"unknown command {args.command}")
    return 2
