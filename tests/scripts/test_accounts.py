"""`ringsync accounts`: the key is required to add, a JWT never comes from argv nor goes out,
rotation re-encrypts, and commands about one account ask which one once there are several."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from events.settings import Settings
from sandbox.server import SandboxServer
from tests.fixtures.commands import ringsync
from tests.scripts.test_cli_errors import base_env
from workers.accounts.store import AccountStore
from workers.accounts.vault import Vault
from workers.store.identity import Store

JWT_LIKE = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLW9mLXRoZS10ZXN0"


def database_bytes(database_url: str) -> bytes:
    """The SQLite file and its write-ahead log, as stored on disk."""
    path = Path(database_url.split("///")[1])
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


@pytest.fixture
def env(tmp_path: Path, redis_url: str, namespace: str) -> dict[str, str]:
    return base_env(tmp_path, redis_url, namespace)


async def _store_account(env: dict[str, str], key: str, account_id: str = "777000004") -> None:
    settings = Settings(_env_file=None, database_url=env["DATABASE_URL"], secret_key=key)
    store = await Store.open(settings.database_url)
    try:
        sealed = Vault(settings).seal(JWT_LIKE)
        await AccountStore(store).add(account_id, "B", "https://platform.ringcentral.com", sealed)
    finally:
        await store.close()


async def test_adding_without_the_secret_key_names_it_and_how_to_make_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    jwt = tmp_path / "jwt"
    jwt.write_text(JWT_LIKE)
    ran = await ringsync(env, "accounts", "add", "--jwt-file", str(jwt))
    assert ran.code == 2
    assert ran.one_clear_line(), ran.err
    assert "RINGSYNC_SECRET_KEY" in ran.err
    assert "Fernet.generate_key()" in ran.err


async def test_a_jwt_is_not_taken_from_the_command_line(env: dict[str, str]) -> None:
    ran = await ringsync(env, "accounts", "add", "--jwt", JWT_LIKE)
    assert ran.code == 2
    assert JWT_LIKE not in ran.err + ran.out


async def test_a_refused_jwt_is_one_line_without_the_jwt(
    env: dict[str, str], tmp_path: Path
) -> None:
    jwt = tmp_path / "jwt"
    jwt.write_text(JWT_LIKE)
    async with SandboxServer() as sb:
        env |= {
            "RINGSYNC_SECRET_KEY": Fernet.generate_key().decode(),
            "RC_SERVER_URL": sb.url,
            "RC_APP_CLIENT_ID": sb.client_id,
            "RC_APP_CLIENT_SECRET": sb.client_secret,
        }
        ran = await ringsync(env, "accounts", "add", "--jwt-file", str(jwt), "--json")
    assert ran.code == 1
    assert ran.one_clear_line(), ran.err
    assert "OAU-213" in ran.err
    assert JWT_LIKE not in ran.err + ran.out


async def test_rotate_key_reencrypts_with_the_first_key(env: dict[str, str]) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    await _store_account(env, old)
    ran = await ringsync(env | {"RINGSYNC_SECRET_KEY": f"{new},{old}"}, "accounts", "rotate-key")
    assert ran.code == 0, ran.err
    assert "1 credentials" in ran.out
    store = await Store.open(env["DATABASE_URL"])
    try:
        (account,) = await AccountStore(store).list()
    finally:
        await store.close()
    only_new = Settings(_env_file=None, secret_key=new)
    assert account.credentials is not None
    assert Vault(only_new).open(account.credentials) == JWT_LIKE
    assert JWT_LIKE.encode() not in database_bytes(env["DATABASE_URL"])


@pytest.mark.parametrize("args", [("resync",), ("subscribe",), ("replay", "--extension", "101")])
async def test_with_several_accounts_a_command_about_one_asks_for_account(
    env: dict[str, str], args: tuple[str, ...]
) -> None:
    key = Fernet.generate_key().decode()
    await _store_account(env, key)
    env |= {
        "RINGSYNC_SECRET_KEY": key,
        "RINGSYNC_WEBHOOK_URL": "https://hooks.example.com/webhook",
        "RINGSYNC_VERIFICATION_TOKEN": "a-verification-token-of-some-length",
    }
    ran = await ringsync(env, *args)
    assert ran.code == 2, ran.err
    assert ran.one_clear_line(), ran.err
    assert "--account" in ran.err


async def test_a_bad_secret_key_is_a_settings_error(env: dict[str, str]) -> None:
    ran = await ringsync(env | {"RINGSYNC_SECRET_KEY": "not-a-fernet-key"}, "accounts", "list")
    assert ran.code == 2
    assert ran.one_clear_line(), ran.err
    assert "RINGSYNC_SECRET_KEY" in ran.err
    assert "not-a-fernet-key" not in ran.err
