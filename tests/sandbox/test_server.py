"""The sandbox's HTTP server answers without waiting on TCP: Nagle is off on its connections."""

from __future__ import annotations

import socket

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.server import start_uvicorn


async def test_connections_send_without_nagle() -> None:
    """A response goes out as headers, then body: with Nagle on, the body waits for the
    client's delayed ACK (40 ms on Linux) on every request of a kept-alive connection."""
    delays: list[int] = []

    async def probe(request: Request) -> JSONResponse:
        return JSONResponse({})

    running = await start_uvicorn(Starlette(routes=[Route("/", probe)]), "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}") as client:
            assert (await client.get("/")).status_code == 200
            for protocol in running.server.server_state.connections:  # the accepted ones
                sock = protocol.transport.get_extra_info("socket")
                delays.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    finally:
        await running.stop()
    assert delays
    assert all(delays)
