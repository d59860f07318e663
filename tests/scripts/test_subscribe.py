"""`ringsync subscribe`: the same check as the cron, run once, with clear failures."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import orjson
import pytest

from events.settings import Settings
from scripts.cli import BadSettings, Failure
from scripts.subscribe import run
from tests.fixtures.renewal import MakeKeeping
from tests.fixtures.sandbox import WebhookSink


def _args(json: bool = False) -> argparse.Namespace:
    return argparse.Namespace(json=json, command="subscribe")


def test_without_a_token_it_says_how_to_make_one(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(webhook_url="https://hooks.example.com/webhook")
    with pytest.raises(BadSettings, match=r"RINGSYNC_VERIFICATION_TOKEN.*secrets\.token_urlsafe"):
        run(_args(), settings)


def test_without_an_address_it_says_which_setting(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(verification_token="t" * 32)
    with pytest.raises(Failure, match=r"RINGSYNC_WEBHOOK_URL is not set"):
        run(_args(), settings)


async def test_prints_id_status_and_expiry_then_changes_nothing(make_keeping: MakeKeeping) -> None:
    k = await make_keeping()

    code, out, err = await k.ringsync("subscribe")
    assert code == 0, err
    [sub] = k.ours()
    [line] = out.splitlines()
    assert line.startswith(f"subscription {sub.id} Active, expires 20")
    assert "(in 13d 23h)" in line
    assert "create" in line

    code, out, err = await k.ringsync("subscribe", "--json")
    assert code == 0, err
    shown = orjson.loads(out)
    assert (shown["id"], shown["status"], shown["action"]) == (sub.id, "Active", "nothing")
    assert shown["remaining_seconds"] > 13 * 86_400
    assert shown["gap"] is None
    assert k.changes() == [("POST", "/restapi/v1.0/subscription")]


async def test_a_receiver_answering_the_handshake_wrong_is_one_clear_line(
    make_keeping: MakeKeeping, webhook_sink: WebhookSink
) -> None:
    webhook_sink.handshake = "no-echo"
    k = await make_keeping(webhook_url=webhook_sink.url)

    code, out, err = await k.ringsync("subscribe")

    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    [line] = [x for x in err.splitlines() if x.startswith("ringsync subscribe:")]
    assert "SUB-525" in line
    assert webhook_sink.url in line
    assert "Validation-Token" in line
    assert k.sandbox.world.subscriptions == {}


async def test_the_missing_token_exit_code(make_keeping: MakeKeeping) -> None:
    k = await make_keeping()

    code, out, err = await k.ringsync("subscribe", RINGSYNC_VERIFICATION_TOKEN="")

    # A setting it cannot do without: bad settings (2), saying how to make one.
    assert (code, out) == (2, "")
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            "ringsync subscribe: RINGSYNC_VERIFICATION_TOKEN is not set; make one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
        )
    )
