"""The call log: the account's (Heavy, newest first, `dateFrom`/`dateTo`, paged) in the spec's
record shape, one extension's (Heavy), and the control call that adds calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from sandbox.server import SandboxServer


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _add(api: httpx.AsyncClient, calls: list[dict[str, Any]]) -> list[str]:
    response = await api.post("/sandbox/call-log", json={"calls": calls})
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()["ids"]
    return ids


async def test_the_account_log_lists_calls_newest_first_in_pages(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    alice, bob = sandbox.world.seed(2)
    now = datetime.now(UTC)
    await _add(
        api,
        [
            {
                "direction": "Outbound",
                "result": "Call connected",
                "startTime": _iso(now - timedelta(hours=hours)),
                "from": {"extensionId": alice},
                "to": {"phoneNumber": "+16505550100"},
            }
            for hours in (1, 2, 3)
        ]
        + [
            {
                "direction": "Inbound",
                "result": "Missed",
                "startTime": _iso(now - timedelta(days=3)),
                "from": {"phoneNumber": "+16505550101"},
                "to": {"extensionId": bob},
            }
        ],
    )
    since = _iso(now - timedelta(days=1))
    url: str | None = f"/restapi/v1.0/account/~/call-log?dateFrom={since}&perPage=2"
    pages = []
    while url:
        response = await api.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["X-Rate-Limit-Group"] == "heavy"
        pages.append(response.json())
        url = pages[-1]["navigation"].get("nextPage", {}).get("uri")
    records = [r for page in pages for r in page["records"]]
    assert len(pages) == 2
    assert pages[0]["paging"]["totalElements"] == 3
    starts = [r["startTime"] for r in records]
    assert starts == sorted(starts, reverse=True)
    first = records[0]
    assert first["direction"] == "Outbound"
    assert first["result"] == "Call connected"
    assert first["from"]["extensionId"] == alice
    assert first["from"]["extensionNumber"]
    assert first["to"] == {"phoneNumber": "+16505550100", "name": None}
    assert first["extension"]["id"] == int(alice)
    assert {"id", "uri", "sessionId", "type", "action"} <= set(first)
    everything = await api.get(
        f"/restapi/v1.0/account/~/call-log?dateFrom={_iso(now - timedelta(days=7))}&perPage=max"
    )
    assert everything.json()["paging"]["perPage"] == 1000
    assert [r["result"] for r in everything.json()["records"]][-1] == "Missed"


async def test_one_extensions_log_and_bad_input(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    (alice,) = sandbox.world.seed(1)
    now = _iso(datetime.now(UTC) - timedelta(minutes=5))
    inbound = {
        "direction": "Inbound",
        "result": "Accepted",
        "startTime": now,
        "from": {"phoneNumber": "+16505550100"},
        "to": {"extensionId": alice},
    }
    await _add(api, [inbound])
    own = await api.get(f"/restapi/v1.0/account/~/extension/{alice}/call-log")
    assert own.headers["X-Rate-Limit-Group"] == "heavy"
    assert [r["result"] for r in own.json()["records"]] == ["Accepted"]
    assert (await api.get("/restapi/v1.0/account/~/call-log?dateFrom=yesterday")).status_code == 400
    bad = await api.post("/sandbox/call-log", json={"calls": [{**inbound, "direction": "Up"}]})
    assert bad.status_code == 400
    assert "direction" in bad.json()["error"]


async def test_one_extensions_message_store_lists_its_texts(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    (alice,) = sandbox.world.seed(1)
    now = datetime.now(UTC)
    texts = [
        {"extensionId": alice, "direction": direction, "creationTime": _iso(now - age)}
        for direction, age in (("Outbound", timedelta(hours=3)), ("Inbound", timedelta(hours=1)))
    ]
    added = await api.post("/sandbox/texts", json={"texts": texts})
    assert added.status_code == 200, added.text
    path = f"/restapi/v1.0/account/~/extension/{alice}/message-store"
    every = await api.get(path, params={"messageType": "SMS"})
    assert every.headers["X-Rate-Limit-Group"] == "light"
    assert [r["direction"] for r in every.json()["records"]] == ["Inbound", "Outbound"]
    sent = (await api.get(path, params={"direction": "Outbound"})).json()["records"]
    assert [(r["type"], r["messageStatus"]) for r in sent] == [("SMS", "Delivered")]
    faxes = await api.get(path, params={"messageType": "Fax"})
    assert faxes.json()["records"] == []
    missing = await api.get("/restapi/v1.0/account/~/extension/1/message-store")
    assert missing.status_code == 404
