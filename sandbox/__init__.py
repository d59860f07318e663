"""A RingCentral look-alike for tests, the demo and benchmarks.

It serves the parts of the RingCentral API that ringsync relies on (OAuth JWT grant, extension
reads, the status PUT and the v2 bulk delete, SCIM user reads, webhook subscriptions with the
handshake and deliveries, per-group rate limits), shaped after the public OpenAPI spec, plus a
control API under `/sandbox/...` that changes users and injects faults. Start it in-process with
`server.SandboxServer` or standalone with `ringsync sandbox` or `python -m` on this package.
"""
