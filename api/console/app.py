"""The console as an ASGI app, mounted at `/` of `ringsync api` (which opens its state)."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from api.console.routes import ROUTES
from api.console.views import render

STATIC = Path(__file__).parent / "static"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "Not found." if exc.status_code == 404 else str(exc.detail)
    return render(request, "error.html", {"message": message}, exc.status_code)


def create_console() -> Starlette:
    """The console's pages and assets, mounted at `/` of the API app (which opens its state)."""
    return Starlette(
        routes=[*ROUTES, Mount("/static", StaticFiles(directory=STATIC), name="static")],
        exception_handlers={HTTPException: _http_error},
    )
