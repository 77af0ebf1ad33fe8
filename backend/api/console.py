"""The web console: `/` is its page, `/console/*` its static files (docs/adr/0018).

Plain files from the top-level `web` package; nothing is built or templated at run time.
The security middleware gives these paths the console's own CSP."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from web import CONSOLE_DIR

CONSOLE_PREFIX = "/console"
# Revalidate every time (ETag / Last-Modified): a new release is picked up at the next load.
REVALIDATE = {"Cache-Control": "no-cache"}


class ConsoleFiles(StaticFiles):
    """The console's files, revalidated on every load; Python sources are not served."""

    def __init__(self) -> None:
        super().__init__(directory=CONSOLE_DIR, follow_symlink=False)

    async def get_response(self, path: str, scope: Scope):  # type: ignore[no-untyped-def]
        if path.endswith((".py", ".pyc")) or "__pycache__" in path:
            path = "-absent-"  # a plain 404, the way any missing file is answered
        response = await super().get_response(path, scope)
        response.headers.update(REVALIDATE)
        return response


def install_console(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(CONSOLE_DIR / "index.html", headers=REVALIDATE)

    app.mount(CONSOLE_PREFIX, ConsoleFiles(), name="console")
