"""The console's sign-in settings (gateway/security/console_access.py): plain passwords and
missing secrets refused, the example config's block, the demo's made-up operator account; and a
database that cannot answer shown as a 503 page, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.console import auth
from gateway.errors import ConfigError
from gateway.security.console_access import ConsoleSettings
from tests.console_env import PASSWORDS, browser_session, console_config, console_section, sign_in
from tests.harness import Gateway, edit_config


def test_console_settings_refuse_plain_passwords_and_missing_secrets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Argon2"):
        ConsoleSettings.model_validate({"secret": "s" * 32, "users": {
            "a": {"role": "viewer", "password_hash": PASSWORDS["vera"]}}})
    with pytest.raises(ValueError, match="console.secret"):
        ConsoleSettings.model_validate({"users": {"a": {"role": "viewer",
                                                        "password_hash": "$argon2id$x"}}})
    cfg = console_config(tmp_path, "sqlite+aiosqlite:///x.db", {})
    env = {k: v for k, v in __import__("os").environ.items() if k != "GATEWAY_CONSOLE_SECRET"}
    with pytest.raises(ConfigError, match="GATEWAY_CONSOLE_SECRET"):
        load_settings(cfg, env=env)
    edit_config(cfg, lambda raw: raw.update(console=console_section(enabled=False)))
    assert load_settings(cfg).console.enabled is False


def test_demo_operator_password_is_made_up_kept_and_signs_in(tmp_path: Path) -> None:
    """The demo's console account: a password made up per data folder (never a fixed one),
    kept in demo-secrets.env (0600), hashed into the settings the demo serves with."""
    import os

    from argon2 import PasswordHasher

    from gateway.config import DEFAULT_CONFIG
    from gateway.demo import DEMO_OPERATOR, demo_console, ensure_demo_secrets
    env_a: dict[str, str] = {}
    env_b: dict[str, str] = {}
    kept = ensure_demo_secrets(tmp_path / "a", env_a)
    ensure_demo_secrets(tmp_path / "b", env_b)
    password = env_a["GATEWAY_CONSOLE_PASSWORD"]
    assert password != env_b["GATEWAY_CONSOLE_PASSWORD"] and len(password) >= 24
    assert f"GATEWAY_CONSOLE_PASSWORD={password}\n" in kept.read_text(encoding="utf-8")
    assert kept.stat().st_mode & 0o077 == 0
    settings = demo_console(load_settings(DEFAULT_CONFIG, env={**os.environ, **env_a}), env_a)
    account = settings.console.users[DEMO_OPERATOR]
    assert account.role == "engineer" and password not in account.password_hash
    assert PasswordHasher().verify(account.password_hash, password)
    assert settings.console.secret == env_a["GATEWAY_CONSOLE_SECRET"]


def test_the_example_config_documents_the_console_block_and_it_loads(tmp_path: Path) -> None:
    """config/gateway.example.yaml's commented console block, uncommented, is valid."""
    import yaml

    from gateway.config import DEFAULT_CONFIG
    lines = (DEFAULT_CONFIG.parent / "gateway.example.yaml").read_text("utf-8").splitlines()
    start = lines.index("# console:")
    block = [line[2:] for line in lines[start:] if line.startswith("# ")]
    raw = yaml.safe_load("\n".join(block))["console"]
    hash_file = tmp_path / "anna.console-hash"
    hash_file.write_text(auth.hash_password("anna-password-1"), encoding="utf-8")
    raw["secret"] = "s" * 32
    raw["users"]["anna"]["password_hash"] = hash_file.read_text(encoding="utf-8")
    s = ConsoleSettings.model_validate(raw)
    assert s.users["anna"].role == "operator" and s.sso is not None
    assert s.trusts("10.8.0.7") and not s.trusts("10.8.1.7") and not s.trusts("not-an-ip")


async def test_a_database_that_cannot_answer_is_a_503_page_not_a_500(tmp_path: Path) -> None:
    from tests.conftest import create_pg_database, drop_pg_database
    url = await create_pg_database()
    try:
        cfg = console_config(tmp_path, url, {})
        async with Gateway(load_settings(cfg)) as gw:
            async with browser_session(str(gw.server.make_url(""))) as http:
                await sign_in(http, "vera")
                await drop_pg_database(url)  # the database is gone under the gateway
                for path in ("/console/cases", "/console/dead-letters", "/console/partners"):
                    async with http.get(path) as r:
                        assert r.status == 503 and r.headers["Retry-After"] == "5", path
                        assert "database" in await r.text()
    finally:
        await drop_pg_database(url)



def test_hash_password_command_prints_a_hash_that_verifies_and_refuses_short_ones() -> None:
    from argon2 import PasswordHasher
    from click.testing import CliRunner

    from gateway.cli import main
    result = CliRunner().invoke(main, ["console", "hash-password", "--stdin"],
                                input="a-console-password\n")
    assert result.exit_code == 0, result.output
    hashed = result.output.strip()
    assert hashed.startswith("$argon2id$") and "a-console-password" not in hashed
    assert PasswordHasher().verify(hashed, "a-console-password")
    ConsoleSettings.model_validate({"secret": "s" * 32, "users": {
        "anna": {"role": "operator", "password_hash": hashed}}})
    short = CliRunner().invoke(main, ["console", "hash-password", "--stdin"], input="short\n")
    assert short.exit_code == 2 and "8 to 1024" in short.output
