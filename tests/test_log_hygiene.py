"""No identity number, name, phone, e-licence id, token or credential in any log line (issue 9).

Logging is configured exactly as the ``gateway`` command does it (the group's ``--log-level`` /
``--log-json`` callback, then ``_settings`` which registers the configured credentials), at
DEBUG, once per renderer. Then the real error paths run — an unexpected exception whose frames
hold a case and a token, a partner client that blows up inside the worker, the admin API with a
non-ASCII byte in ``Authorization``, cases stored through SQLite at DEBUG, deliveries to a closed
port until the breaker opens — and the captured output is grepped. Values logged *on purpose*
must come out as placeholders: that proves the redaction processor, not luck, removed them.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
import yaml

from gateway.api.keys import WORKER
from gateway.observability.logs import QUIET_LOGGERS
from gateway.observability.redaction import PLACEHOLDERS, REDACTED, clear_secrets, scrub
from tests.harness import (signed_session,
    ROOT,
    Gateway,
    edit_config,
    free_port,
    wait_until,
    write_config,
)

ID_NO, USCC, PHONE, NAME = "110105199003071239", "91110105MA01AB125M", "13800138000", "张三"
ELICENCE = "1.2.156.3005.2.11100000000013338W.001"
ADMIN_TOKEN = "adm-4f1c9e7b-token-Q"
APP_SECRET = "NATIONAL-APPSECRET-5d2e"
SYNTHETIC_CASE = {"applicant": {"name": NAME, "certNo": ID_NO, "phone": PHONE},
                  "company": {"certNo": USCC}, "elicences": [{"licenceId": ELICENCE}]}
SAMPLES = ("01-person-shanghai-social-security", "10-person-tianjin-social-security",
           "11-company-hebei-branch-filing")
_PERSON_KEYS = {"name", "certNo", "phone", "address"}


# -- the redaction itself ------------------------------------------------------------------------

def test_patterns_hide_personal_data_and_keep_ids_readable() -> None:
    delivery, ts = "3f2b8c1e-1234-4abc-9def-0123456789ab", "2026-11-30T09:15:00.123456Z"
    key = "BJGW-13900139000abcdef22010519900307123913900139000"  # hex digest: not a phone/ID
    line = (f"{ts} delivery {delivery} key={key} cert {ID_NO} uscc {USCC} tel {PHONE} "
            f"+86 138-0013-8000 licence {ELICENCE} appNo BJ2026113000000001 took 0.13912345678")
    out = scrub(line)
    for value in (ID_NO, USCC, PHONE, ELICENCE, "138-0013-8000"):
        assert value not in out
    for kept in (ts, delivery, key, "BJ2026113000000001", "0.13912345678"):
        assert kept in out
    assert out.count(PLACEHOLDERS["phone"]) == 2 and PLACEHOLDERS["elicence"] in out
    assert scrub("身份证号110105199003071239，手机13800138000。") == \
        f"身份证号{PLACEHOLDERS['id_number']}，手机{PLACEHOLDERS['phone']}。"


@pytest.mark.parametrize("value, kind", [
    (ID_NO, "id_number"), ("11010519900307123X", "id_number"), (USCC, "uscc"),
    (PHONE, "phone"), ("138 0013 8000", "phone"), ("1.2.156.3005.2.X1.001", "elicence")])
def test_a_value_alone_is_replaced_by_its_placeholder(value: str, kind: str) -> None:
    assert scrub(f"x {value}.") == f"x {PLACEHOLDERS[kind]}."


def test_an_ordinary_line_is_left_alone() -> None:
    line = ("2026-11-30T09:15:00.123456Z [warning] breaker for tianjin opened until "
            "2026-11-30T09:16:00+00:00: Cannot connect to host 127.0.0.1:8702 "
            "correlation_id=corr-01 delivery_id=3f2b8c1e-1234-4abc-9def-012345678901")
    assert scrub(line) == line


@pytest.mark.parametrize("text, secret", [
    ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
    ("{'Authorization': 'Bearer s3cr\udcffet'}", "s3cr"),
    ('{"authCode": "TJ-XYZ", "password": "p w d"}', "TJ-XYZ"),
    ('{"authCode": "TJ-XYZ", "password": "p w d"}', "p w d"),
    ("admin_token=zz9 app_secret: qq8", "zz9"),
    ("admin_token=zz9 app_secret: qq8", "qq8"),
    ('<wsse:Password Type="x#PasswordDigest">dig==</wsse:Password>', "dig=="),
    ("&lt;authCode&gt;TJ-XYZ&lt;/authCode&gt;", "TJ-XYZ"),
    ("postgresql+asyncpg://gw:pg-pass@db/gw", "pg-pass"),
    ("sent with Bearer tok-123", "tok-123"),
])
def test_secret_values_next_to_their_keys_are_hidden(text: str, secret: str) -> None:
    assert secret not in scrub(text)


def test_a_rendered_json_line_stays_valid_json() -> None:
    line = json.dumps({"event": 'password="a b" token: x', "password": REDACTED})
    assert json.loads(scrub(line))["password"] == REDACTED


def test_a_broken_log_call_is_reported_without_its_arguments(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The standard handler's error report prints the raw message and arguments to stderr."""
    from gateway.observability.logs import _Handler
    handler = _Handler(io.StringIO())
    record = logging.LogRecord("gateway.x", logging.ERROR, __file__, 1,
                               "applicant %s phone %s name %s", (ID_NO, PHONE), None)
    handler.handle(record)  # one argument short: formatting fails
    err = capsys.readouterr().err
    assert "logging error in gateway.x" in err
    assert ID_NO not in err and PHONE not in err


# -- logging configured as the CLI does it, captured -----------------------------------------------

class Captured:
    def __init__(self, renderer: str, buf: io.StringIO, config: Path, settings: Any) -> None:
        self.renderer, self.buf, self.config, self.settings = renderer, buf, config, settings

    @property
    def text(self) -> str:
        return self.buf.getvalue()


def _closed_port_url(path: str) -> str:
    return f"http://127.0.0.1:{free_port()}{path}"  # nothing listens there: connection refused


def _config(tmp_path: Path) -> Path:
    cfg = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'g.db'}", {
        "national": _closed_port_url("/api/v1/cross-province/cases"),
        "tianjin": _closed_port_url("/tianjin/ExchangeService"),
        "hebei": _closed_port_url("/hebei/CaseExchange")}, partner_timeout=1.0)

    def edit(raw: dict[str, Any]) -> None:
        raw["server"]["admin_token"] = ADMIN_TOKEN
        raw["partners"]["national"]["credentials"]["app_secret"] = APP_SECRET
    return edit_config(cfg, edit)


@pytest.fixture(params=["console", "json"])
def captured(request: pytest.FixtureRequest, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    """``gateway --log-level debug [--log-json] …`` into a buffer; everything restored after."""
    from gateway.cli import main
    from gateway.cli.options import read_settings
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config(),
             {n: logging.getLogger(n).level for n in (*QUIET_LOGGERS, "aiohttp.access", "alembic")})
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)  # the handler binds the stream it finds
    main.callback(log_level="debug", log_json=request.param == "json")  # type: ignore[misc]
    monkeypatch.undo()
    config = _config(tmp_path)
    settings = read_settings(str(config))
    try:
        yield Captured(request.param, buf, config, settings)
    finally:
        clear_secrets()
        root.handlers[:], level, cfg, levels = saved
        root.setLevel(level)
        structlog.configure(**cfg)
        for n, lv in levels.items():
            logging.getLogger(n).setLevel(lv)


def _forbidden(config: Path, samples: dict[str, Any]) -> set[str]:
    """Every personal value of the posted samples and the synthetic case, every credential."""
    out = {ID_NO, USCC, PHONE, NAME, ELICENCE, ADMIN_TOKEN}
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    for p in raw["partners"].values():
        out.update(str(v) for v in (p.get("credentials") or {}).values())

    def walk(node: Any, parent: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, str) and (k in ("licenceId", "holderCertNo") or (
                        k in _PERSON_KEYS and parent in ("applicant", "agent",
                                                         "legalRepresentative"))):
                    out.add(v)
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, parent)
    for name in SAMPLES:
        walk(samples[name])
    return out


def _assert_clean(cap: Captured, forbidden: set[str]) -> None:
    text = cap.text
    leaks = sorted(v for v in forbidden if v in text)
    assert not leaks, f"{cap.renderer} log leaks {leaks}:\n{text[-4000:]}"
    if cap.renderer == "json":
        for line in text.splitlines():
            json.loads(line)  # redaction kept every line valid JSON


def _handle_case(case: dict[str, Any], token: str) -> None:
    """A handler with a whole case and a token in its frame, failing unexpectedly — the rich
    console tracebacks printed exactly these locals."""
    applicant = case["applicant"]
    header = f"Bearer {token}"
    raise ValueError(f"cannot route applicant with certNo {applicant['certNo']} ({len(header)})")


def _log_on_purpose() -> None:
    stdlib = logging.getLogger("gateway.hygiene")
    slog = structlog.get_logger("gateway.hygiene")
    try:
        _handle_case(SYNTHETIC_CASE, ADMIN_TOKEN)
    except ValueError:
        stdlib.exception("stdlib: unexpected error")
        slog.exception("structlog: unexpected error")
    stdlib.warning("on purpose: id %s phone %s uscc %s licence %s", ID_NO, PHONE, USCC, ELICENCE)
    slog.warning("on purpose", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                 auth_code="TJ-DEMO-AUTHCODE-0001", note=f"configured {APP_SECRET}", cert_no=ID_NO)


async def _admin_with_non_ascii_authorization(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/v1/admin/dead-letters HTTP/1.1\r\nHost: gw\r\n"
                 b"Authorization: Bearer " + ADMIN_TOKEN.encode() + b"\xff\r\n"
                 b"Connection: close\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def _exploding_send(payload: Any, **kw: Any) -> Any:
    case, token = SYNTHETIC_CASE, ADMIN_TOKEN  # noqa: F841 (locals a traceback could print)
    # a bug whose message quotes the applicant's name: no redaction pattern knows a name
    raise RuntimeError(f"partner client bug for {case['applicant']['name']}")


async def test_no_personal_data_or_secret_in_any_log_line(
        captured: Captured, samples: dict[str, Any]) -> None:
    from sqlalchemy import text

    from gateway.store import create_engine
    cap = captured
    _log_on_purpose()
    async with Gateway(cap.settings) as gw:
        client = gw.app[WORKER].clients["national"]
        setattr(client, "send", _exploding_send)  # noqa: B010 (a bug inside the worker)
        ids = []
        for name in SAMPLES:
            status, doc = await gw.post_case(samples[name], **{"X-Correlation-Id": f"corr-{name[:2]}"})
            assert status == 202, doc
            ids.append(doc["id"])
        answer = await _admin_with_non_ascii_authorization(gw.server.port)  # type: ignore[arg-type]
        assert answer.startswith(b"HTTP/1.1 "), answer
        national = (await gw.wait_final(ids[0]))["deliveries"][0]
        assert national["state"] == "dead"

        async def breaker_logged() -> bool:  # deliveries to the closed ports failed often enough
            return "tianjin" in cap.text and "hebei" in cap.text
        await wait_until(breaker_logged, 20, "the worker to log the failing partners")
    # SQL at DEBUG: the driver stays quiet even when someone lowers its level (a name has no
    # pattern: only the handler's filter keeps it out), and a failing statement's message
    # carries no parameter
    logging.getLogger("aiosqlite").setLevel(logging.DEBUG)
    engine = create_engine(f"sqlite+aiosqlite:///{Path(cap.config).parent / 'g.db'}")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT :v"), {"v": NAME})
            try:
                await conn.execute(text("SELECT :v FROM no_such_table"), {"v": PHONE})
            except Exception as e:
                assert PHONE not in str(e) and "hide_parameters" in str(e)
                logging.getLogger("gateway.hygiene").exception("query failed")
            else:
                raise AssertionError("the statement should have failed")
    finally:
        await engine.dispose()

    _assert_clean(cap, _forbidden(cap.config, samples))
    out = cap.text
    # the redaction processor is what removed the values logged on purpose
    for kind in ("id_number", "phone", "uscc", "elicence", "secret"):
        assert PLACEHOLDERS[kind] in out, kind
    assert f"certNo {PLACEHOLDERS['id_number']}" in out  # inside the exception message
    assert "Traceback" in out and "_handle_case" in out
    # the worker says where the bug is, not its text (that goes to the dead letter)
    assert "failed unexpectedly: RuntimeError at test_log_hygiene.py:" in out
    assert "partner client bug" in national["lastMessage"]
    assert "no_such_table" in out  # the failed statement was logged, without its parameters
    assert national["id"] in out and "corr-01" in out  # ids stay readable for correlation


def test_gateway_serve_at_debug_writes_a_clean_log(tmp_path: Path,
                                                   samples: dict[str, Any]) -> None:
    """The real command, its real stderr: default (console) renderer at DEBUG."""
    cfg = _config(tmp_path)
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--log-level", "debug", "serve", "--config",
             str(cfg), "--port", str(port)], stdout=out, stderr=out, cwd=ROOT)
    try:
        asyncio.run(_drive_served(port, samples, log))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    cap = Captured("console", io.StringIO(log.read_text(encoding="utf-8", errors="replace")),
                   cfg, None)
    _assert_clean(cap, _forbidden(cfg, samples))
    assert "tianjin" in cap.text


async def _drive_served(port: int, samples: dict[str, Any], log: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 40
    async with signed_session(base) as http:
        while True:
            try:
                async with http.get("/readyz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "gateway serve not ready"
            await asyncio.sleep(0.1)
        for name in SAMPLES:
            async with http.post("/api/v1/cases", json=samples[name]) as r:
                assert r.status == 202, await r.text()
        assert (await _admin_with_non_ascii_authorization(port)).startswith(b"HTTP/1.1 ")

    async def failures_logged() -> bool:  # enough failed sends to the closed ports
        return "tianjin" in log.read_text(encoding="utf-8", errors="replace")
    await wait_until(failures_logged, 20, "gateway serve to log the failing partners")
