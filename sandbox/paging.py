"""RingCentral's enumerated paging for list endpoints: `page`/`perPage` (1,000 at most), the
`paging` block, and `navigation` links that keep the request's other query parameters."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from sandbox.responses import invalid

MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 100

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    number: int
    items: Sequence[T]
    # `uri`, `paging` and `navigation`: the body, but for its records.
    frame: dict[str, Any]


def _int_param(request: Request, name: str, default: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 1 else None


def page_of(
    request: Request, items: Sequence[T], path: str, *, allow_max: bool = False
) -> Page[T] | Response:
    """The page of `items` the request asks for, or the 400 a bad page or perPage gets.

    With `allow_max`, `perPage=max` means the largest page (the spec's PerPageWithMax)."""
    page = _int_param(request, "page", 1)
    if page is None:
        return invalid("page")
    per_page = _int_param(request, "perPage", DEFAULT_PER_PAGE)
    if allow_max and request.query_params.get("perPage") == "max":
        per_page = MAX_PER_PAGE
    if per_page is None or per_page > MAX_PER_PAGE:
        return invalid("perPage")
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    total_pages = max(1, math.ceil(len(items) / per_page))

    def uri(number: int) -> dict[str, str]:
        params = [
            (k, v) for k, v in request.query_params.multi_items() if k not in ("page", "perPage")
        ]
        params += [("page", str(number)), ("perPage", str(per_page))]
        return {"uri": f"{path}?{urlencode(params)}"}

    paging: dict[str, int] = {
        "page": page,
        "totalPages": total_pages,
        "perPage": per_page,
        "totalElements": len(items),
    }
    if chunk:
        paging["pageStart"] = start
        paging["pageEnd"] = start + len(chunk) - 1
    navigation = {"firstPage": uri(1), "lastPage": uri(total_pages)}
    if page < total_pages:
        navigation["nextPage"] = uri(page + 1)
    if page > 1:
        navigation["previousPage"] = uri(min(page - 1, total_pages))
    frame = {"uri": uri(page)["uri"], "paging": paging, "navigation": navigation}
    return Page(page, chunk, frame)
