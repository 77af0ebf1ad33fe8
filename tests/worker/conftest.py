"""Fixtures of the worker tests."""

from tests.worker.stack import make_stack

__all__ = ["make_stack"]
