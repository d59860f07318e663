"""Fuzzing the receiver over real HTTP: random headers and bodies never get a 5xx (except 503
while Redis is down), and only a valid, authenticated notification is ever queued.

Each property runs against one real uvicorn receiver; hypothesis drives it from a thread with a
blocking client while the server keeps the test's event loop. `bench/fuzz.py` runs the same
property for 100,000+ cases.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.models import Notification
from events.queue import JOB_KEY_PREFIX
from events.settings import Settings
from events.verify import MAX_ECHO_BYTES
from tests.fixtures.services import free_port

TOKEN = "fuzz-verification-token"
LIMIT = 2048
Runner = Callable[..., AbstractAsyncContextManager[str]]

# --- what a request may look like ------------------------------------------------------------

# h11 (the client) refuses values with surrounding whitespace; the raw tests below send those.
_ascii = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(str.strip)
_wrong_token = st.one_of(
    st.none(),
    st.just(TOKEN.upper()),
    st.just(TOKEN[:-1]),
    st.just(TOKEN + "x"),
    st.just(""),
    _ascii,
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=500, max_size=600),
)
# Mostly the right token, so valid bodies get past the check often enough.
token_header = st.integers(0, 9).flatmap(lambda n: st.just(TOKEN) if n < 6 else _wrong_token)
content_type = st.one_of(
    st.none(),
    st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-16"]),
    _ascii,
)
json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_ids = st.one_of(st.integers(1, 10**12).map(str), st.integers(1, 10**12), st.uuids().map(str))
_events = st.sampled_from(
    [
        "/restapi/v1.0/account/~/extension",
        "/restapi/v1.0/account/400386146004/extension",
        "/restapi/v1.0/account/~/extension/1001",
        "/restapi/v1.0/account/~/directory/entries",
        "/restapi/v1.0/subscription/~?threshold=86400&interval=3600",
        "/restapi/v1.0/account/~/presence",
    ]
)
_timestamps = st.sampled_from(
    ["2026-11-23T10:00:00.123Z", "2026-11-23T10:00:00.123+0000", "2026-11-23T10:00:00+02:00"]
)
_change = st.fixed_dictionaries(
    {"extensionId": _ids},
    optional={
        "eventType": st.sampled_from(["Create", "Update", "Delete"]),
        "hints": st.lists(st.sampled_from(["ExtensionInfo", "Permissions"]), max_size=2),
    },
)
_valid_bodies = st.one_of(
    st.fixed_dictionaries({"extensions": st.lists(_change, min_size=1, max_size=5)}),
    _change,
    st.fixed_dictionaries(
        {"contacts": st.lists(st.fixed_dictionaries({"id": _ids}), min_size=1, max_size=3)}
    ),
)


@st.composite
def valid_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """What RingCentral really sends (both body shapes; ids as strings or numbers)."""
    event = draw(_events)
    body: Any
    if event.endswith(("/extension", "/extension/1001")):
        body = draw(st.one_of(_valid_bodies.filter(lambda b: "contacts" not in b)))
    elif event.endswith("/directory/entries"):
        body = {"contacts": draw(st.lists(st.fixed_dictionaries({"id": _ids}), min_size=1))}
    else:
        body = draw(st.dictionaries(st.text(max_size=8), json_value, max_size=3))
    doc: dict[str, Any] = {
        "uuid": draw(st.uuids().map(str)),
        "event": event,
        "timestamp": draw(_timestamps),
    }
    doc["body"] = body
    if draw(st.booleans()):
        doc["subscriptionId"] = draw(_ids)
        doc["ownerId"] = draw(_ids)
    return doc


# Envelope-shaped, but any field may have any type or be missing.
odd_envelopes = st.fixed_dictionaries(
    {},
    optional={
        "uuid": st.one_of(_ids, json_value),
        "event": st.one_of(_events, json_value),
        "timestamp": st.one_of(_timestamps, json_value),
        "subscriptionId": st.one_of(_ids, json_value),
        "ownerId": st.one_of(_ids, json_value),
        "body": st.one_of(_valid_bodies, json_value),
    },
)


def _pad(doc: dict[str, Any], size: int) -> bytes:
    """`doc` as JSON of exactly `size` bytes (padding field), or as small as it gets."""
    raw = json.dumps({**doc, "padding": ""}).encode()
    return json.dumps({**doc, "padding": "x" * max(0, size - len(raw))}).encode()


bodies = st.one_of(
    valid_envelopes().map(lambda d: json.dumps(d).encode()),
    odd_envelopes.map(lambda d: json.dumps(d).encode()),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.sampled_from([b"", b" ", b"\r\n", b"{}", b"null", b"[]", b"{", b'"x"']),
    st.tuples(valid_envelopes(), st.integers(LIMIT - 40, LIMIT + 40)).map(lambda t: _pad(*t)),
)
# A None value means the header is not sent.
header_sets = st.fixed_dictionaries(
    {
        "Verification-Token": token_header,
        "Validation-Token": st.one_of(st.none(), token_header),
        "Content-Type": content_type,
    }
)


# --- the property --------------------------------------------------------------------------


def _clean(value: str | None) -> str | None:
    # HTTP drops optional whitespace around header values before the app sees them.
    return None if value is None else value.strip(" \t")


def expected_statuses(headers: dict[str, str], body: bytes) -> set[int]:
    """What the receiver must answer, from its contract (the envelope model says what parses)."""
    if len(body) > LIMIT:
        return {413}
    validation = _clean(headers.get("Validation-Token"))
    if validation and not body.strip() and len(validation) <= MAX_ECHO_BYTES:
        return {200}  # the subscription handshake
    if TOKEN not in (_clean(headers.get("Verification-Token")), validation):
        return {401}
    try:
        Notification.model_validate_json(body)
    except ValueError:
        return {400}
    return {200}


@dataclass
class Probe:
    """Posts one fuzzed request and checks the answer and the queue against the contract."""

    url: str
    redis_url: str
    settings: Settings
    redis_up: bool = True
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    http: httpx.Client = field(init=False)
    store: redis.Redis = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.store = redis.Redis.from_url(self.redis_url)

    def close(self) -> None:
        self.http.close()
        self.store.close()

    def queue_size(self) -> int:
        return cast(int, self.store.zcard(self.settings.queue_name)) if self.redis_up else 0

    def post(self, headers: dict[str, str | None], body: bytes) -> None:
        sent = {k: v for k, v in headers.items() if v is not None}
        before = self.queue_size()
        reply = self.http.post("/webhook", content=body, headers=sent)
        self.check(sent, body, reply.status_code, self.queue_size() - before)

    def check(self, headers: dict[str, str], body: bytes, status: int, added: int) -> None:
        self.cases += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        want = expected_statuses(headers, body)
        handshake = want == {200} and not body.strip() and len(body) <= LIMIT
        if not self.redis_up and want == {200} and not handshake:
            want = {503}  # valid and authenticated, but there is nowhere to queue it
        assert status in want, (status, want, headers, body[:200])
        if status != 200 or handshake:
            assert added == 0, (status, headers, body[:200])
            return
        # Queued once per uuid: a repeated uuid is acknowledged but not queued again.
        uid = Notification.model_validate_json(body).uuid
        job = JOB_KEY_PREFIX + self.settings.key("notification", uid)
        assert added in (0, 1)
        assert self.store.exists(job)


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def run_property(probe: Probe, examples: int) -> None:
    @fuzz_settings(examples)
    @given(headers=header_sets, body=bodies)
    def one_request(headers: dict[str, str | None], body: bytes) -> None:
        probe.post(headers, body)

    one_request()


# --- raw requests: header values HTTP clients refuse to send -----------------------------------

_header_bytes = st.binary(max_size=60).filter(lambda b: b"\r" not in b and b"\n" not in b)


@st.composite
def raw_requests(draw: st.DrawFn) -> tuple[bytes, bytes, dict[str, bytes]]:
    body = draw(bodies)
    length = draw(
        st.one_of(
            st.just(str(len(body)).encode()),
            st.integers(-5, LIMIT * 2).map(lambda n: str(n).encode()),
            st.sampled_from([b"", b"abc", b"1e3", b" 12", b"0x10", b"99999999999999999999"]),
            _header_bytes,
        )
    )
    headers = {"Content-Length": length}
    for name in ("Verification-Token", "Validation-Token", "Content-Type"):
        value = draw(
            st.one_of(
                st.none(), st.sampled_from([TOKEN.encode(), f" {TOKEN}\t".encode()]), _header_bytes
            )
        )
        if value is not None:
            headers[name] = value
    lines = [b"POST /webhook HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body, body, headers


def raw_status(port: int, request: bytes, *, short: bool) -> int | None:
    """The status line's code, or None when the server closed without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        if short:  # a body shorter than declared must end, not leave the server waiting
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    if not reply:
        return None
    return int(reply.split(b" ", 2)[1])


def run_raw_property(probe: Probe, port: int, examples: int) -> None:
    @fuzz_settings(examples)
    @given(raw_requests())
    def one_request(case: tuple[bytes, bytes, dict[str, bytes]]) -> None:
        request, body, headers = case
        before = probe.queue_size()
        declared = headers["Content-Length"].strip(b" \t")
        short = declared.isdigit() and int(declared) > len(body)
        status = raw_status(port, request, short=short)
        added = probe.queue_size() - before
        probe.cases += 1
        if status is None:
            assert added == 0
            return
        probe.statuses[status] = probe.statuses.get(status, 0) + 1
        assert status in {200, 400, 401, 413}, (status, request[:300])
        if added:
            # Only a well-formed request whose body parses, with the right token, is queued.
            assert status == 200
            assert headers["Content-Length"] == str(len(body)).encode()
            assert TOKEN.encode() in (
                headers.get("Verification-Token"),
                headers.get("Validation-Token"),
            )
            Notification.model_validate_json(body)

    one_request()


# --- the tests ---------------------------------------------------------------------------------


@pytest.fixture
def fuzz_target(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(verification_token=TOKEN, max_body_bytes=LIMIT)


async def test_random_requests_never_get_a_5xx_and_only_valid_ones_are_queued(
    run_receiver: Runner, fuzz_target: Settings, redis_url: str, redis: Any
) -> None:
    async with run_receiver(fuzz_target) as url:
        probe = Probe(url, redis_url, fuzz_target)
        try:
            await asyncio.to_thread(run_property, probe, 2500)
        finally:
            probe.close()
    assert probe.cases >= 2500
    # The generator reached every branch of the contract.
    assert {200, 400, 401, 413} <= set(probe.statuses), probe.statuses


async def test_raw_header_values_and_content_lengths(
    run_receiver: Runner, fuzz_target: Settings, redis_url: str, redis: Any
) -> None:
    port = free_port()
    async with run_receiver(fuzz_target, port=port) as url:
        probe = Probe(url, redis_url, fuzz_target)
        try:
            await asyncio.to_thread(run_raw_property, probe, port, 800)
        finally:
            probe.close()
    assert probe.cases >= 800
    assert {400, 401} <= set(probe.statuses), probe.statuses


async def test_with_redis_down_the_only_5xx_is_503(
    run_receiver: Runner, make_settings: Callable[..., Settings], redis_url: str
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    target = make_settings(verification_token=TOKEN, max_body_bytes=LIMIT, redis_url=closed)
    async with run_receiver(target) as url:
        probe = Probe(url, redis_url, target, redis_up=False)
        try:
            await asyncio.to_thread(run_property, probe, 600)
        finally:
            probe.close()
    assert probe.cases >= 600
    assert set(probe.statuses) <= {200, 400, 401, 413, 503}
    assert 503 in probe.statuses, probe.statuses
