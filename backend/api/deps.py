"""Typed dependencies: the container, a fresh unit of work per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.bootstrap import Container
from backend.core.config import Settings
from backend.domain.ports import UnitOfWork


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def get_settings_dep(container: Annotated[Container, Depends(get_container)]) -> Settings:
    return container.settings


def get_uow(container: Annotated[Container, Depends(get_container)]) -> UnitOfWork:
    return container.uow()


ContainerDep = Annotated[Container, Depends(get_container)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
UoW = Annotated[UnitOfWork, Depends(get_uow)]
