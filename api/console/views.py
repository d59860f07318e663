"""Rendering: the package's Jinja2 templates, autoescaped (nothing from the mirror is ever
marked safe), and the headers every console response carries."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from api.console.session import CSRF_FIELD

# Only our own stylesheet and script; no inline script, no framing, forms post only to us.
HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def ago(moment: datetime | None, now: datetime) -> str:
    """`moment` as a short age ("42 s ago", "3 min ago", "5 h ago", "2 d ago")."""
    if moment is None:
        return "never"
    return f"{duration((now - moment).total_seconds())} ago"


def duration(seconds: float | timedelta | None) -> str:
    if seconds is None:
        return "-"
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f} s"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def stamp(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("api.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(csrf_field=CSRF_FIELD, ago=ago, duration=duration, stamp=stamp)
    return env


def render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    context = {"session": None, "refresh": False, "path": request.url.path, **context}
    html = environment().get_template(template).render(context)
    return HTMLResponse(html, status, headers=HEADERS)
