"""Callers authenticate with the city platform's x-tif headers (issue 14): a good signature is
served; a wrong one, an unknown paasid, a stale timestamp or a reused nonce is a 401 problem
naming the header, and nothing is stored. A replay is refused on a second instance on the same
database too. Health checks stay open; ``auth: off`` only on loopback; secrets from the
environment and from files."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.api.auth import NONCES
from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.protocols.tif import TifSigner
from tests.harness import (TEST_PAASID, TEST_SIGNER, TEST_TOKEN, Gateway, Simulator, db_rows,
                           edit_config, write_config)

SAMPLE = "01-person-shanghai-social-security"


async def _post(gw: Gateway, case: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    assert gw.http is not None
    async with gw.http.post("/api/v1/cases", json=case, headers=headers) as r:
        return r.status, await r.json(content_type=None)


def _assert_401(answer: tuple[int, Any], header: str, code: str) -> None:
    status, doc = answer
    assert status == 401, doc
    assert doc["type"] == "urn:gateway:problem:unauthorized" and doc["code"] == code
    assert doc["errors"] == [{"in": "header", "name": header, "message": doc["detail"]}]
    assert header in doc["detail"] and TEST_TOKEN not in str(doc)


async def _cases(db_url: str) -> int:
    return int((await db_rows(db_url, "SELECT count(*) FROM cases"))[0][0])


async def test_good_signature_is_served_and_every_refusal_names_its_header(
        tmp_path: Path, db_url: str, samples: dict[str, Any]) -> None:
    case = samples[SAMPLE]
    async with Simulator("national") as sim, \
            Gateway(load_settings(write_config(tmp_path, db_url, {"national": sim.url()})),
                    signer=None) as gw:
        bad = {**TEST_SIGNER.headers(), "x-tif-signature": "0" * 64}
        _assert_401(await _post(gw, case, bad), "x-tif-signature", "bad_signature")
        unknown = TifSigner("NOBODY", TEST_TOKEN).headers()
        _assert_401(await _post(gw, case, unknown), "x-tif-signature", "bad_signature")
        stale = TifSigner(TEST_PAASID, TEST_TOKEN, clock=lambda: time.time() - 181).headers()
        _assert_401(await _post(gw, case, stale), "x-tif-timestamp", "stale_timestamp")
        _assert_401(await _post(gw, case, {}), "x-tif-paasid", "missing_header")
        assert await _cases(db_url) == 0  # refused before the handler: nothing stored

        good = TEST_SIGNER.headers()
        status, doc = await _post(gw, case, good)
        assert status == 202, doc
        _assert_401(await _post(gw, case, good), "x-tif-nonce", "reused_nonce")  # replay
        assert gw.http is not None
        async with gw.http.get(f"/api/v1/cases/{doc['id']}") as r:  # unsigned read
            assert r.status == 401
        async with gw.http.get(f"/api/v1/cases/{doc['id']}", headers=TEST_SIGNER.headers()) as r:
            assert r.status == 200
        async with gw.http.get("/api/v1/admin/breakers") as r:
            assert r.status == 401
        for path in ("/healthz", "/readyz", "/metrics"):  # orchestrators and Prometheus
            async with gw.http.get(path) as r:
                assert r.status == 200, path
        assert await _cases(db_url) == 1
        rows = await db_rows(db_url, "SELECT submitted_by FROM cases")
        assert rows[0][0] == "test"


async def test_a_replay_is_refused_by_a_second_instance_on_the_same_database(
        tmp_path: Path, db_url: str, samples: dict[str, Any]) -> None:
    """Two gateway apps, each with its own engine and batches, on one database (PostgreSQL is
    the scale-out case; SQLite's file is shared the same way)."""
    async with Simulator("national") as sim:
        settings = load_settings(write_config(tmp_path, db_url, {"national": sim.url()}))
        async with Gateway(settings, signer=None) as one, Gateway(settings, signer=None) as two:
            headers = TEST_SIGNER.headers()
            status, doc = await _post(one, samples[SAMPLE], headers)
            assert status == 202, doc
            other = {**samples[SAMPLE], "applicationNo": "BJ2026113099999999"}
            _assert_401(await _post(two, other, headers), "x-tif-nonce", "reused_nonce")
            assert await _cases(db_url) == 1
            status, _ = await _post(two, other, TEST_SIGNER.headers())  # a fresh nonce: fine
            assert status == 202


async def test_a_submission_spends_its_nonce_in_the_case_transaction_and_any_replay_is_401(
        tmp_path: Path, db_url: str, samples: dict[str, Any]) -> None:
    """Issue 12: a submission's nonce is remembered in the transaction that stores its case (no
    separate nonce commit), and a request that ends without storing a case (a 422, an earlier
    case answered 200) still spends its nonce: its replay is a 401 too."""
    async with Simulator("national") as sim, \
            Gateway(load_settings(write_config(tmp_path, db_url, {"national": sim.url()})),
                    signer=None) as gw:
        separate = gw.app[NONCES]._writes  # noqa: SLF001 - the separate nonce path's batches
        good = TEST_SIGNER.headers()
        status, doc = await _post(gw, samples[SAMPLE], good)
        assert status == 202, doc
        assert separate.items == 0  # one commit for the case and its nonce
        _assert_401(await _post(gw, samples[SAMPLE], good), "x-tif-nonce", "reused_nonce")
        invalid = {**samples[SAMPLE], "applicationNo": ""}
        once = TEST_SIGNER.headers()
        assert (await _post(gw, invalid, once))[0] == 422
        _assert_401(await _post(gw, invalid, once), "x-tif-nonce", "reused_nonce")
        same = TEST_SIGNER.headers()
        assert (await _post(gw, samples[SAMPLE], same))[0] == 200  # the earlier case
        _assert_401(await _post(gw, samples[SAMPLE], same), "x-tif-nonce", "reused_nonce")
        assert separate.items == 2  # the 422 and its replay, after the answer; the 200: in its txn
        assert await _cases(db_url) == 1


async def test_auth_window_is_configurable(tmp_path: Path, samples: dict[str, Any]) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Simulator("national") as sim:
        cfg = edit_config(write_config(tmp_path, db, {"national": sim.url()}),
                          lambda raw: raw["server"].update(auth_window="30s"))
        async with Gateway(load_settings(cfg), signer=None) as gw:
            late = TifSigner(TEST_PAASID, TEST_TOKEN, clock=lambda: time.time() - 60).headers()
            _assert_401(await _post(gw, samples[SAMPLE], late), "x-tif-timestamp",
                        "stale_timestamp")


def test_auth_off_is_refused_unless_only_loopback(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server: {host: 0.0.0.0, auth: 'off'}\n")
    with pytest.raises(ConfigError, match="auth: off is refused on host '0.0.0.0'"):
        load_settings(cfg, env={})
    with pytest.raises(ConfigError, match="auth: off is refused"):
        load_settings(_write(tmp_path / "e.yaml", "server: {auth: 'off'}\n"),
                      env={"GATEWAY_HOST": "::"})  # every interface, by the environment
    for host in ("127.0.0.1", "::1", "localhost"):
        s = load_settings(_write(tmp_path / "f.yaml", f"server: {{host: '{host}', auth: 'off'}}\n"),
                          env={})
        assert s.server.auth == "off"


async def test_auth_off_serves_the_local_operator_without_signatures(
        tmp_path: Path, samples: dict[str, Any]) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Simulator("national") as sim:
        cfg = edit_config(write_config(tmp_path, db, {"national": sim.url()}),
                          lambda raw: raw["server"].update(auth="off"))
        async with Gateway(load_settings(cfg), signer=None) as gw:
            status, doc = await _post(gw, samples[SAMPLE], {})
            assert status == 202, doc
            rows = await db_rows(db, "SELECT submitted_by FROM cases")
            assert rows[0][0] == "local"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


CALLER_WITH = ("callers:\n  city:\n    paasid: CITY\n    token: '{token}'\n"
               "    permissions: [submit]\n"
               "partners:\n  tianjin:\n    protocol: soap-xml-string\n    url: http://a\n"
               "    mapping: m\n    credentials: {{auth_code: '{code}'}}\n"
               "    inbound: {{auth_code: '{inbound}'}}\n")


def test_secrets_from_files_and_the_environment(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    token = secrets / "city-token"
    token.write_text("  a-long-caller-token-from-a-file\n", encoding="utf-8")
    os.chmod(token, 0o600)
    cfg = _write(tmp_path / "c.yaml", CALLER_WITH.format(
        token="${file:secrets/city-token}", code="${TJ_AUTH_CODE}", inbound="${file:"
        + str(token) + "}"))
    with caplog.at_level("WARNING", logger="gateway.config"):
        s = load_settings(cfg, env={"TJ_AUTH_CODE": "from-the-environment"})
    assert s.callers["city"].token == "a-long-caller-token-from-a-file"  # stripped, relative
    assert s.partners["tianjin"].credentials["auth_code"] == "from-the-environment"
    assert s.partners["tianjin"].inbound is not None
    assert s.partners["tianjin"].inbound.auth_code == "a-long-caller-token-from-a-file"  # absolute
    assert not caplog.records
    assert "a-long-caller-token" not in repr(s.callers["city"])

    os.chmod(token, 0o644)  # readable by others: used, with a warning naming key and path only
    with caplog.at_level("WARNING", logger="gateway.config"):
        load_settings(cfg, env={"TJ_AUTH_CODE": "x"})
    assert "callers.city.token: secret file" in caplog.text and "group or others" in caplog.text
    assert "a-long-caller-token" not in caplog.text

    with pytest.raises(ConfigError) as e:
        load_settings(cfg, env={})
    assert str(e.value).endswith("partners.tianjin.credentials.auth_code: environment variable "
                                 "TJ_AUTH_CODE is not set")
    missing = _write(tmp_path / "m.yaml", CALLER_WITH.format(
        token="${file:secrets/nope}", code="x", inbound="y"))
    with pytest.raises(ConfigError) as e:
        load_settings(missing, env={})
    assert "callers.city.token: cannot read secret file" in str(e.value)
    assert "\n" not in str(e.value)


def test_the_example_config_shows_every_option_and_loads(tmp_path: Path) -> None:
    import shutil
    from typing import get_args

    from gateway.security.callers import Permission
    from tests.harness import ROOT
    copy = tmp_path / "gateway.example.yaml"
    shutil.copyfile(ROOT / "config" / "gateway.example.yaml", copy)
    (tmp_path / "secrets").mkdir()
    token = tmp_path / "secrets" / "ops-caller-token"
    token.write_text("ops-token-from-a-file-0001\n", encoding="utf-8")
    os.chmod(token, 0o600)
    s = load_settings(copy, env={"GATEWAY_CITY_CALLER_TOKEN": "c" * 24,
                                 "GATEWAY_TJ_WINDOW_TOKEN": "t" * 24})
    assert s.server.auth == "x-tif" and s.server.auth_window == 180
    assert s.callers["ops"].token == "ops-token-from-a-file-0001"
    assert {p for c in s.callers.values() for p in c.permissions} == set(get_args(Permission))
    text = copy.read_text(encoding="utf-8")
    for option in ("auth:", "auth_window:", "admin_token", "paasid:", "token:", "permissions:",
                   "items:", "regions:", "identity:", "${file:", "${"):
        assert option in text, option


def test_the_shipped_config_holds_no_secret(tmp_path: Path) -> None:
    from tests.harness import DEFAULT_CONFIG, TEST_SECRETS
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    for value in TEST_SECRETS.values():  # the simulators' demo values live in the environment
        assert value not in text
    with pytest.raises(ConfigError) as e:
        load_settings(DEFAULT_CONFIG, env={})
    assert "is not set" in str(e.value) and e.value.key is not None
    s = load_settings(DEFAULT_CONFIG, env=TEST_SECRETS)
    assert s.callers["city"].identity == "masked" and s.server.auth == "x-tif"


def test_callers_tokens_and_inbound_secrets_are_scrubbed_from_logs() -> None:
    from gateway.observability.logs import protect_secrets
    from gateway.observability.redaction import clear_secrets, scrub
    from tests.harness import DEFAULT_CONFIG, TEST_SECRETS
    env = {**TEST_SECRETS, "GATEWAY_CITY_CALLER_TOKEN": "caller-token-never-logged-17",
           "GATEWAY_HEBEI_INBOUND_PASSWORD": "hebei-inbound-never-logged"}
    try:
        protect_secrets(load_settings(DEFAULT_CONFIG, env=env))
        line = scrub("caller-token-never-logged-17 and hebei-inbound-never-logged")
        assert "never-logged" not in line
    finally:
        clear_secrets()
