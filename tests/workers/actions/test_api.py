"""`/v1/actions` with a real worker and the sandbox: propose → approve → done, and every
refusal answered with its status and a reason."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.mirror import API_TOKEN, api_settings, running_api
from tests.workers.actions.conftest import MakeRig
from workers.actions.decide import ActionState
from workers.actions.store import ActionStore

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def test_propose_approve_done_and_refusals(make_rig: MakeRig) -> None:
    rig = await make_rig()
    ext = await rig.user(email="ada@example.com")
    body: dict[str, Any] = {
        "kind": "suspend",
        "email": "ADA@example.com",
        "reason": "left",
        "by": "hr",
    }
    async with (
        running_api(api_settings(rig.p.settings)) as url,
        httpx.AsyncClient(base_url=url, headers=AUTH) as http,
    ):
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
            denied = await http.post("/v1/actions", json=body, headers=headers)
            assert denied.status_code == 401
        proposed = await http.post("/v1/actions", json=body)
        assert proposed.status_code == 201, proposed.text
        action = proposed.json()
        assert (action["extension_id"], action["state"]) == (ext, "proposed")
        path = f"/v1/actions/{action['id']}"

        same = await http.post(f"{path}/approve", json={"by": "hr"})
        assert (same.status_code, same.json()["error"]) == (403, "forbidden")
        for nobody in ("   ", "policy", "POLICY "):  # blank, or the policy's own name
            refused = await http.post(f"{path}/approve", json={"by": nobody})
            assert refused.status_code == 422, nobody
            assert refused.json()["reason"]
        assert (await rig.action(action["id"])).state is ActionState.PROPOSED
        approved = await http.post(f"{path}/approve", json={"by": "it"})
        assert approved.status_code == 200
        assert approved.json()["approved_by"] == "it"
        done = await rig.settled(action["id"])
        assert done.state is ActionState.DONE
        again = await http.post(f"{path}/reject", json={"by": "it"})
        assert again.status_code == 409
        assert "done" in again.json()["reason"]

        listed = (await http.get("/v1/actions", params={"state": "done"})).json()
        assert [a["id"] for a in listed] == [action["id"]]
        bad_inputs = [
            {**body, "kind": "delete"},
            {**body, "extension_id": ext},  # both extension_id and email
            {"kind": "suspend", "extension_id": ext, "by": "hr"},  # no reason
            {**body, "by": " "},
        ]
        bad_inputs.append({**body, "by": "Policy"})
        for bad in bad_inputs:
            refused = await http.post("/v1/actions", json=bad)
            assert refused.status_code == 422, bad
            assert refused.json()["reason"]
        stale = await http.post("/v1/actions", json=body)  # already suspended: nothing to do
        assert stale.status_code == 422
        assert "status is Disabled" in stale.json()["reason"]
        missing = await http.post("/v1/actions/nope/approve", json={"by": "it"})
        assert missing.status_code == 404
        assert (await http.get("/v1/actions", params={"state": "gone"})).status_code == 422
        spec = (await http.get("/v1/openapi.json")).json()
        assert {"/actions", "/actions/{action_id}/approve"} <= set(spec["paths"])
    assert [c["method"] for c in rig.writes(ext)] == ["PUT"]


async def test_ringcentral_away_during_a_proposal(make_rig: MakeRig) -> None:
    rig = await make_rig()
    ext = await rig.user()
    # The protected extensions are read at proposal: RingCentral refuses that read.
    rig.p.sandbox.world.set_faults(refuse={"GET /restapi/v1.0/account/~": 503})
    body = {"kind": "suspend", "extension_id": ext, "reason": "left", "by": "hr"}
    async with (
        running_api(api_settings(rig.p.settings)) as url,
        httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as http,
    ):
        away = await http.post("/v1/actions", json=body)
    assert away.status_code == 503, away.text
    assert away.json()["reason"].startswith("RingCentral")
    for extra in ((), ("--dry-run",)):
        ran = await rig.cli(
            "actions", "propose", "suspend", "--extension", ext, "--reason", "x", "--by", "hr",
            *extra, RINGSYNC_LOG_LEVEL="ERROR",  # the retries' warnings are not the error
        )  # fmt: skip
        assert ran.code == 1, ran.err
        assert ran.one_clear_line(), ran.err
        assert "RingCentral" in ran.err
    assert await ActionStore(rig.p.store).list() == []


async def test_the_policy_name_is_reserved_in_the_cli(make_rig: MakeRig) -> None:
    rig = await make_rig()
    ext = await rig.user()
    action_id = await rig.propose("deprovision", ext)

    ran = await rig.approve(action_id, by="Policy")

    assert ran.code == 2
    assert "reserved" in ran.err
    assert (await rig.action(action_id)).state is ActionState.PROPOSED
