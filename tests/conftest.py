"""Shared fixtures live in tests/fixtures/ as plugins, one module per kind of real service."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.sandbox",
    "tests.fixtures.receiver",
    "tests.fixtures.store",
    "tests.fixtures.pipeline",
    "tests.fixtures.commands",
    "tests.fixtures.sink",
    "tests.fixtures.renewal",
    "tests.fixtures.browser",
]
