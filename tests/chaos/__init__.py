"""Chaos scenarios: the whole pipeline as real processes, one fault at a time.

Each scenario starts the sandbox (`python -m sandbox`), the receiver (`ringsync serve`)
and workers (`ringsync worker`) as processes, subscribes with `ringsync subscribe`, drives a
stream of user changes through the sandbox's control API, injects one fault, and ends with the
mirror equal to the sandbox's truth and every lifecycle event delivered to a signed-webhook sink
once per webhook-id. Run them alone with `pytest -m chaos`; they are part of the default run.
"""
