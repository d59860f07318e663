"""The console at `/` of `ringsync api`: server-rendered pages a person keeps open.

Per account: subscription health and remaining life, last notification and lag, held resync
plans (approve, naming the approver), recent transitions, rate-limit budgets and a chart of
notifications and changes per minute; for the deployment: the queue and the dead letters (replay).
Templates and assets ship in this package (no build step, nothing from a CDN); the page refreshes
itself. Login with RINGSYNC_API_TOKEN opens a session (see `api.console.session`).
"""

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
