"""The sandbox's Starlette app: RingCentral's routes plus the control API, over one World."""

from __future__ import annotations

from starlette.applications import Starlette

from sandbox import control, extensions, oauth, roles, scim, subscription_api, writes
from sandbox.world import World


def create_app(world: World) -> Starlette:
    app = Starlette(
        routes=[
            *oauth.ROUTES,
            *extensions.ROUTES,
            *writes.ROUTES,
            *roles.ROUTES,
            *scim.ROUTES,
            *subscription_api.ROUTES,
            *control.ROUTES,
        ]
    )
    app.state.world = world
    app.state.list_cache = {}
    app.state.list_version = -1
    return app
