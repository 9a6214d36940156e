"""A broken configuration fails at start-up with the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_loads() -> None:
    s = load_settings(ROOT / "config" / "gateway.yaml", env={})
    assert s.database.url.startswith("sqlite+aiosqlite:///")
    assert "national" in s.partners
    assert s.path(s.mappings_dir) == ROOT / "mappings"


def test_environment_overrides_urls_and_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("partners:\n  national:\n    protocol: rest-json\n    url: http://a\n"
                   "    mapping: m\n    credentials: {app_secret: '${NATIONAL_SECRET}'}\n")
    s = load_settings(cfg, env={"GATEWAY_DATABASE_URL": "postgresql+asyncpg://h/db",
                                "GATEWAY_PARTNER_NATIONAL_URL": "http://b",
                                "NATIONAL_SECRET": "s3"})
    assert s.database.url == "postgresql+asyncpg://h/db"
    assert s.partners["national"].url == "http://b"
    assert s.partners["national"].credentials == {"app_secret": "s3"}


@pytest.mark.parametrize(("text", "expected"), [
    ("server: {port: 99999}\n", "c.yaml: server.port: Input should be less than or equal to 65535"),
    ("server:\n  port: [1\n", "c.yaml:3: not valid YAML"),
    ("home_region: '11'\n", "c.yaml: home_region: Value error, must be a 6- or 12-digit region code"),
    ("partners:\n  national: {url: http://a, mapping: m}\n",
     "c.yaml: partners.national.protocol: Field required"),
    ("partners:\n  national: {protocol: rest-json, url: http://a, mapping: m,"
     " credentials: {k: '${MISSING_SECRET}'}}\n",
     "c.yaml: partners.national.credentials.k: environment variable MISSING_SECRET is not set"),
    ("wroker: {}\n", "c.yaml: wroker: Extra inputs are not permitted"),
    ("worker: {lease_seconds: 5}\npartners:\n  national: {protocol: rest-json, url: http://a,"
     " mapping: m, timeout: 10}\n",
     "c.yaml: Value error, worker.lease_seconds (5) must be longer than partners.national.timeout (10)"),
])
def test_broken_config_names_file_key_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_settings(cfg, env={})
    assert str(e.value).replace(str(tmp_path) + "/", "").startswith(expected)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml: cannot read"):
        load_settings(tmp_path / "nope.yaml", env={})
