"""The deliver job and the sweep, against a real HTTP sink and a real arq worker, on SQLite and
PostgreSQL: once per transition, signed, retried in order, unsubscribed on 410, dead-lettered."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from events.queue import DELIVER
from events.settings import Settings
from tests.fixtures.pipeline import eventually
from tests.fixtures.services import free_port
from tests.fixtures.sink import (
    HOOK,
    HOOK_SPEC,
    MakeRig,
    Received,
    Sink,
    new_secret,
    signature_valid,
)
from workers.decide import Observation, decide
from workers.delivery.deliver import deliver, endpoints, label, retry_delay
from workers.delivery.outbox import announce
from workers.delivery.signing import signed_headers
from workers.delivery.sweep import sweep_deliveries
from workers.main import build_worker
from workers.store.engine import write_transaction
from workers.store.mirror import write_decisions


async def test_the_worker_runs_deliveries_and_their_sweep(
    make_settings: Callable[..., Settings],
) -> None:
    worker = build_worker(make_settings(job_timeout=20), handle_signals=False)
    try:
        assert worker.functions[DELIVER].timeout_s == 20
        assert worker.functions[DELIVER].keep_result_s == 0  # job ids are reused once done
        crons = {job.name.split(":")[-1]: job for job in worker.cron_jobs}
        assert crons["delivery_sweep"].unique
        assert crons["delivery_sweep"].run_at_startup
        assert crons["delivery_sweep"].second == {30}
    finally:
        await worker.close()


def test_the_retry_schedule_repeats_its_last_delay() -> None:
    schedule = Settings(_env_file=None).delivery_schedule
    assert [retry_delay(schedule, n) for n in range(1, 9)] == [
        5, 30, 120, 600, 1800, 3600, 3600, 3600,
    ]  # fmt: skip


def test_endpoints_and_their_log_labels() -> None:
    settings = Settings(
        _env_file=None,
        offboarding_urls="https://u:p@hooks.example.com:8443/in?token=s3cret, https://b.example",
        offboarding_hook="pkg.mod:fn",
    )
    found = endpoints(settings)
    assert found[-1] == "hook:pkg.mod:fn"
    assert label(found[0]) == "https://hooks.example.com:8443/in"  # no credentials, no query


def test_signatures_check_out_by_hand() -> None:
    secret = new_secret()
    body = b'{"type":"user.created"}'
    headers = signed_headers(secret, "evt-1", body)
    assert headers["webhook-id"] == "evt-1"
    assert signature_valid(secret, headers, body)
    assert not signature_valid(secret, headers, body + b" ")
    assert not signature_valid(new_secret(), headers, body)


def _check_signed(secret: str, received: list[Received]) -> None:
    for request in received:
        assert signature_valid(secret, request.headers, request.body)
        assert request.headers["webhook-id"] == request.json["id"]
        assert abs(int(request.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60


async def test_each_transition_is_posted_once_signed_even_when_jobs_run_again(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    secret = new_secret()
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(offboarding_urls=[url], offboarding_secret=secret)
    rows = await rig.change("101")
    rows += await rig.change("101", "Disabled")
    rows += await rig.change("101", "Enabled", first_name="Augusta")
    assert [r.type for r in rows] == ["user.created", "user.suspended", "user.reactivated"]
    received = await sink.wait_delivered(3)

    # The same rows again: announced, run directly, swept. Nothing more is sent.
    await announce(rig.d, rows)
    await rig.drain()
    await rig.stop_workers()
    for row in rows:
        assert await deliver(rig.ctx, row.id) == "done"
    await sweep_deliveries(rig.ctx)
    assert len(sink.requests()) == 3

    _check_signed(secret, received)
    assert [r.headers["webhook-id"] for r in received] == [r.event_id for r in rows]
    last = received[-1].json
    assert last["type"] == "user.reactivated"
    assert last["id"] == rows[-1].event_id
    data = last["data"]
    assert data["sequence"] == 3
    assert data["previous_state"] == "suspended"
    assert data["state"] == "active"
    assert data["cause"] == "test-101"
    assert data["user"]["first_name"] == "Augusta"
    assert data["diffs"]["first_name"] == ["Ada", "Augusta"]
    assert received[-1].headers["content-type"] == "application/json"
    for row in rows:
        found = await rig.delivery(row, url)
        assert found is not None
        assert found.status == "delivered"
        assert found.attempts == 1


async def test_a_sink_failing_three_times_then_answering_200_gets_it_once(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    secret = new_secret()
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(offboarding_urls=[url], offboarding_secret=secret)
    sink.plan("/a", 500, 503, 429)
    (row,) = await rig.change("201")
    found = await rig.wait_status(row, url, "delivered")
    assert found.attempts == 4
    assert found.last_status == 200
    assert [r.status for r in sink.requests()] == [500, 503, 429, 200]
    assert len(sink.delivered()) == 1
    # Every attempt carries the same id and its own, valid signature.
    assert {r.headers["webhook-id"] for r in sink.requests()} == {row.event_id}
    _check_signed(secret, sink.requests())
    # The worker's metrics saw it all.
    registry = rig.workers[0][0].ctx["courier"].metrics.registry
    sample = registry.get_sample_value
    assert sample("ringsync_delivery_attempts_total", {"outcome": "retrying"}) == 3
    assert sample("ringsync_delivery_attempts_total", {"outcome": "delivered"}) == 1
    assert sample("ringsync_delivery_failures_total", {"kind": "5xx"}) == 2
    assert sample("ringsync_delivery_latency_seconds_count") == 1


async def test_410_unsubscribes_that_endpoint_and_the_others_carry_on(
    make_delivery_rig: MakeRig, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    gone, alive = f"{sink.url}/gone", f"{sink.url}/alive"
    rig = await make_delivery_rig(offboarding_urls=[gone, alive], offboarding_secret=new_secret())
    sink.answer("/gone", 410)
    with caplog.at_level(logging.ERROR, logger="workers.delivery.deliver"):
        first = await rig.change("301")
        await rig.wait_status(first[0], gone, "unsubscribed")
        second = await rig.change("302") + await rig.change("301", "Disabled")
        await sink.wait_delivered(3, "/alive")
        for row in second:
            await rig.wait_status(row, gone, "unsubscribed")
    assert len(sink.requests("/gone")) == 1
    shouted = [r for r in caplog.records if "ENDPOINT UNSUBSCRIBED" in r.getMessage()]
    assert len(shouted) == 1

    async def settled() -> bool:
        counts = await rig.deliveries.counts(rig.account_id)
        return counts["unsubscribed"] == 3 and counts["delivered"] == 3

    await eventually(settled, what="3 delivered and 3 unsubscribed")


async def test_a_later_event_waits_while_an_earlier_one_is_in_backoff(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(
        offboarding_urls=[url], offboarding_secret=new_secret(), delivery_schedule=[0.2]
    )
    (created,) = await rig.change("401")
    await rig.wait_status(created, url, "delivered")
    failures = iter([500, 500, 500])
    sink.rule = lambda r: next(failures, None) if r.type == "user.suspended" else None
    (suspended,) = await rig.change("401", "Disabled")
    (reactivated,) = await rig.change("401", "Enabled")
    other = await rig.change("402")  # another user is not held up by 401's backoff
    await rig.wait_status(reactivated, url, "delivered")
    await rig.wait_status(other[0], url, "delivered")
    mine = [r for r in sink.requests() if r.json["data"]["extension_id"] == "401"]
    assert [(r.type, r.status) for r in mine] == [
        ("user.created", 200),
        ("user.suspended", 500),
        ("user.suspended", 500),
        ("user.suspended", 500),
        ("user.suspended", 200),
        ("user.reactivated", 200),
    ]
    assert (await rig.delivery(suspended, url)).attempts == 4  # type: ignore[union-attr]


async def test_a_later_event_waits_behind_a_dead_one_which_replayed_goes_first(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(
        offboarding_urls=[url], offboarding_secret=new_secret(), delivery_max_age=1
    )
    sink.rule = lambda r: 500 if r.type == "user.suspended" else None
    await rig.change("501")
    (suspended,) = await rig.change("501", "Disabled")
    (reactivated,) = await rig.change("501", "Enabled")
    (other,) = await rig.change("502")  # another user is not held up by 501's dead event
    dead = await rig.wait_status(suspended, url, "dead")
    await rig.wait_status(other, url, "delivered")
    await rig.drain()
    await sweep_deliveries(rig.ctx)  # nothing is due: the dead one holds the line
    await rig.drain()
    waiting = await rig.delivery(reactivated, url)
    assert waiting is not None
    assert (waiting.status, waiting.attempts) == ("pending", 0)
    assert "user.reactivated" not in [r.type for r in sink.requests()]
    assert dead.last_status == 500
    assert dead.delivered_at is None
    letters = [x for x in await rig.d.store.list_dead_letters() if x.account_id == rig.account_id]
    assert [(x.job, x.error[:8]) for x in letters] == [("deliver", "HTTP 500")]
    assert letters[0].arguments == {"outbox_id": suspended.id, "endpoint": url, "replay": True}

    # Replaying the dead letter (what `ringsync replay --dead-letters` does) re-opens it: it is
    # sent first, and the event that waited behind it follows.
    sink.rule = None
    assert await deliver(rig.ctx, **letters[0].arguments) == "delivered"
    await rig.wait_status(reactivated, url, "delivered")
    mine = [r.type for r in sink.delivered() if r.json["data"]["extension_id"] == "501"]
    assert mine == ["user.created", "user.suspended", "user.reactivated"]


async def test_unreachable_endpoints_are_retried_then_dead_lettered(
    make_delivery_rig: MakeRig,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/nobody"
    rig = await make_delivery_rig(
        offboarding_urls=[url], offboarding_secret=new_secret(), delivery_max_age=1
    )
    (row,) = await rig.change("601")
    dead = await rig.wait_status(row, url, "dead")
    assert dead.attempts > 2
    assert dead.last_status is None
    assert dead.last_error is not None
    assert "Connect" in dead.last_error


async def test_nothing_is_sent_for_a_transaction_that_rolled_back(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(offboarding_urls=[url], offboarding_secret=new_secret())
    observation = Observation(read_at=datetime.now(UTC), status="Enabled", type="User")
    decision = decide(observation, None)
    written = []

    async def fail_after_writing() -> None:
        nonlocal written
        async with write_transaction(rig.d.store.engine) as conn:
            written = await conn.run_sync(write_decisions, rig.account_id, [("701", decision)], "t")
            raise RuntimeError("the user change failed after the outbox row was written")

    with pytest.raises(RuntimeError):
        await fail_after_writing()
    assert written
    assert await rig.d.store.list_outbox(rig.account_id) == []
    await announce(rig.d, written)  # even a careless caller cannot make it send
    await sweep_deliveries(rig.ctx)
    (committed,) = await rig.change("702")
    await rig.wait_status(committed, url, "delivered")
    await rig.stop_workers()
    assert [r.json["data"]["extension_id"] for r in sink.requests()] == ["702"]
    assert sum((await rig.deliveries.counts(rig.account_id)).values()) == 1


async def test_the_sweep_sends_what_no_job_announced(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(
        workers=0, offboarding_urls=[url], offboarding_secret=new_secret()
    )
    rows = await rig.change("801", announced=False)
    rows += await rig.change("801", "Disabled", announced=False)
    assert sum((await rig.deliveries.counts(rig.account_id)).values()) == 0
    assert await sweep_deliveries(rig.ctx) == "2 created, 1 queued"  # the head of the line
    rig.start_worker()
    received = await sink.wait_delivered(2)
    assert [r.type for r in received] == ["user.created", "user.suspended"]


async def test_without_a_secret_nothing_is_sent_unsigned(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(offboarding_urls=[url])
    (row,) = await rig.change("901")
    found = await rig.wait_status(row, url, "failed")
    assert found.last_error is not None
    assert "RINGSYNC_OFFBOARDING_SECRET" in found.last_error
    await rig.stop_workers()
    assert sink.requests() == []


async def test_the_hook_is_an_endpoint_under_the_same_rules(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(
        offboarding_urls=[url], offboarding_secret=new_secret(), offboarding_hook=HOOK_SPEC
    )
    HOOK.failures_left = 2
    (created,) = await rig.change("1001")
    (suspended,) = await rig.change("1001", "Disabled")
    hook = f"hook:{HOOK_SPEC}"
    await rig.wait_status(suspended, hook, "delivered")
    assert [(e.type, e.id) for e in HOOK.events] == [
        ("user.created", created.event_id),
        ("user.created", created.event_id),
        ("user.created", created.event_id),
        ("user.suspended", suspended.event_id),
    ]
    assert HOOK.events[-1].data.previous_state == "active"
    assert (await rig.delivery(created, hook)).attempts == 3  # type: ignore[union-attr]
    assert len(await sink.wait_delivered(2)) == 2


async def test_two_workers_and_a_flaky_sink_deliver_everything_once_in_order(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(
        workers=2, offboarding_urls=[url], offboarding_secret=new_secret()
    )
    chance = random.Random(5)
    sink.rule = lambda r: 503 if chance.random() < 0.3 else None
    rows = []
    for status in ("Enabled", "Disabled", "Enabled"):
        for n in range(20):
            rows += await rig.change(f"u{n}", status)
    delivered = await sink.wait_delivered(len(rows))
    await rig.drain()
    assert sorted(r.headers["webhook-id"] for r in sink.delivered()) == sorted(
        row.event_id for row in rows
    )
    for n in range(20):
        mine = [
            r.json["data"]["sequence"]
            for r in delivered
            if r.json["data"]["extension_id"] == f"u{n}"
        ]
        assert mine == [1, 2, 3]


async def test_a_hook_that_cannot_be_imported_fails_like_an_endpoint(
    make_delivery_rig: MakeRig,
) -> None:
    rig = await make_delivery_rig(offboarding_hook="tests.no_such_module:hook")
    (row,) = await rig.change("1201")
    found = await rig.wait_status(row, "hook:tests.no_such_module:hook", "failed")
    assert found.last_error is not None
    assert "cannot be imported" in found.last_error


def test_the_schedule_setting_reads_a_comma_list_of_positive_delays() -> None:
    settings = Settings(_env_file=None, delivery_schedule="0.5, 2,60")
    assert settings.delivery_schedule == [0.5, 2.0, 60.0]
    with pytest.raises(ValueError, match="positive"):
        Settings(_env_file=None, delivery_schedule="5,0")
