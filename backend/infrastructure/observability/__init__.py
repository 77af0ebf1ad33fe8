"""Prometheus exposition that stays correct under several uvicorn worker processes."""

from backend.infrastructure.observability.multiprocess import (
    MULTIPROC_ENV,
    metrics_exposition,
    prepare_multiproc_dir,
)

__all__ = ["MULTIPROC_ENV", "metrics_exposition", "prepare_multiproc_dir"]
