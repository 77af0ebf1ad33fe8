"""In-memory fakes of the ports, for service tests that run in milliseconds."""

from tests.fakes.uow import FakeUnitOfWork, FakeUnitOfWorkFactory

__all__ = ["FakeUnitOfWork", "FakeUnitOfWorkFactory"]
