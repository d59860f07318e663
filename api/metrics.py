"""`/metrics` (bearer RINGSYNC_API_TOKEN): the receivers' counters as they published them to
Redis (see `events.metrics`), and the mirror's users by state and the queue's depth, read at
each scrape. The worker keeps its own endpoint (RINGSYNC_METRICS_PORT)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from api.state import api_state
from workers.store import tables


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def receiver_families(published: dict[bytes, bytes]) -> list[Metric]:
    """The receivers' metric families from the hash they publish to."""
    families: dict[str, Metric] = {}
    for field, value in sorted(published.items()):
        name, kind, documentation, sample, labels = orjson.loads(field)
        family = families.get(name)
        if family is None:
            family = families[name] = Metric(name, documentation, kind)
        family.add_sample(sample, labels, float(value))
    return list(families.values())


async def metrics(request: Request) -> Response:
    state = api_state(request)
    published = await state.redis.hgetall(state.settings.metrics_key)  # type: ignore[misc]
    users = GaugeMetricFamily(
        "ringsync_users", "Mirrored users by account and state.", labels=["account_id", "state"]
    )
    c = tables.users.c
    query = select(c.account_id, c.state, func.count()).group_by(c.account_id, c.state)
    async with state.engine.connect() as conn:
        for account_id, user_state, count in (await conn.execute(query)).all():
            users.add_metric([str(account_id), str(user_state)], float(count))
    depth = GaugeMetricFamily("ringsync_queue_depth", "Jobs on the queue (waiting or running).")
    depth.add_metric([], float(await state.redis.zcard(state.settings.queue_name)))
    registry = CollectorRegistry()
    registry.register(_Snapshot([*receiver_families(published), users, depth]))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
