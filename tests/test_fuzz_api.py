"""Property-based fuzzing of the HTTP API (issue 9): whatever a caller sends, the gateway answers
below 500, every 4xx is an RFC 9457 problem document, and every stored case is served back as
standard JSON.

Hypothesis drives a real gateway (worker off) served from a background thread, over plain
``http.client``, so hostile header bytes and percent-encoded paths go out exactly as drawn. The
inputs: arbitrary JSON values (including NaN, huge numbers, lone surrogates, control
characters), the sample cases with up to three mutations (values replaced, keys dropped or
added, strings given hostile suffixes, raw-text tricks such as duplicate keys, deep nesting and
5000 digits), random ``X-Correlation-Id``/``Content-Type`` headers, case ids in paths, and for the
admin API random query strings, operators, tokens and bodies on every endpoint. There is no OpenAPI
document to hand to schemathesis, hence hypothesis. SQLite runs the long version; PostgreSQL (which
refuses NUL, over-long values and non-finite numbers where SQLite does not) a shorter one.
"""

from __future__ import annotations

import asyncio
import copy
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import pytest
import yaml
from aiohttp import web
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.config import Settings, load_settings
from tests.conftest import ROOT, create_pg_database, drop_pg_database
from tests.harness import signed_headers, write_config

TOKEN = "fuzz-admin-token"
SAMPLES = {p.stem: json.loads(p.read_text(encoding="utf-8"))
           for p in sorted((ROOT / "samples" / "cases").glob("*.json"))}


# -- a gateway in a thread ------------------------------------------------------------------------

class ServedGateway:
    """``create_app`` on its own event loop in a thread, so a synchronous hypothesis test can
    talk to it with blocking requests."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.port = 0

    def __enter__(self) -> Self:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    async def _start(self) -> None:
        self.runner = web.AppRunner(create_app(self.settings, shutdown_grace=1.0))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    def __exit__(self, *exc: object) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def request(self, method: str, path: str, headers: list[tuple[str, bytes]],
                body: bytes | None = None) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, text in signed_headers().items():  # as the test caller (x-tif)
                conn.putheader(name, text)
            for name, value in headers:
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, (r.getheader("Content-Type") or "").split(";")[0].strip(), r.read()
        finally:
            conn.close()


def _settings(tmp: Path, db_url: str) -> Settings:
    cfg = write_config(tmp, db_url, {"national": "http://127.0.0.1:9/unused"}, enabled=False)
    raw = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    raw["server"]["admin_token"] = TOKEN
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_settings(cfg)


@pytest.fixture(scope="module")
def sqlite_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    tmp = tmp_path_factory.mktemp("fuzz-sqlite")
    with ServedGateway(_settings(tmp, f"sqlite+aiosqlite:///{tmp / 'g.db'}")) as gw:
        yield gw


@pytest.fixture(scope="module")
def postgres_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    url = asyncio.run(create_pg_database())
    try:
        with ServedGateway(_settings(tmp_path_factory.mktemp("fuzz-pg"), url)) as gw:
            yield gw
    finally:
        asyncio.run(drop_pg_database(url))


# -- what every answer must be --------------------------------------------------------------------

def _strict_json(raw: bytes) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"non-standard JSON served: {token}")
    return json.loads(raw.decode("utf-8"), parse_constant=refuse)


def check_answer(answer: tuple[int, str, bytes]) -> Any:
    status, ctype, raw = answer
    event(f"status {status}")  # --hypothesis-show-statistics shows what the runs reached
    assert status < 500, raw[:2000]
    if status >= 400:
        assert ctype == "application/problem+json", (status, ctype, raw[:500])
        doc = _strict_json(raw)
        assert doc["status"] == status
        assert isinstance(doc["title"], str) and doc["title"]
        assert isinstance(doc["detail"], str) and doc["detail"]
        for e in doc.get("errors", []):
            assert isinstance(e["message"], str)
            assert "path" in e or {"in", "name"} <= set(e)
        return doc
    return _strict_json(raw) if ctype.endswith("json") else raw


# -- strategies -----------------------------------------------------------------------------------

any_char = st.characters(codec=None, exclude_categories=())   # surrogates and controls included
nasty_text = st.one_of(
    st.text(any_char, max_size=30),
    st.sampled_from(["\x00", "\n", "\r\n", "\t", "\x1b[0m", "\x85", "\ud800", "\uffff", "２０２６",
                     "٢٠٢٦", "2026-02-30T09:15:00+08:00", "2026-13-01T00:00:00+99:99",
                     "BJ2026113000000001\n", "x" * 5000, "", " ", "𠮷", "a\u2028b"]),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                        st.floats(allow_nan=True, allow_infinity=True), nasty_text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(any_char, max_size=8), inner, max_size=4)),
    max_leaves=12)
header_bytes = st.one_of(
    st.binary(max_size=80).map(lambda b: bytes(c for c in b if c == 9 or 32 <= c != 127)),
    st.sampled_from([b"corr-1", b"c" * 1000, b"\xff\xfe", b"caf\xc3\xa9", b" ", b"a b", b""]),
)
RAW_TRICKS = [  # what json.dumps would never write: applied to the serialised sample
    lambda b: b[:-1] + b', "channel": "APP"}',                 # duplicate key
    lambda b: b[:-1] + b', "formData": {"n": ' + b"9" * 5000 + b"}}",
    lambda b: b[:-1] + b', "formData": {"n": NaN}}',
    lambda b: b[:-1] + b', "formData": {"n": -Infinity}}',
    lambda b: b[:-1] + b', "formData": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    lambda b: b[: len(b) // 2],                                 # truncated
    lambda b: b.replace(b'"name": "', b'"name": "\\udc80', 1),
    lambda b: b.replace(b"2026", "٢٠٢٦".encode(), 1),
    lambda b: b + b"\n\x00",
]


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*path, i))


def _mutate(data: st.DataObject, case: dict[str, Any]) -> None:
    for _ in range(data.draw(st.integers(0, 3), label="mutations")):
        paths = [p for p in _paths(case) if p]
        path = data.draw(st.sampled_from(paths), label="path")
        parent: Any = case
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        kind = data.draw(st.sampled_from(["replace", "suffix", "delete", "add"]), label="kind")
        if kind == "replace":
            parent[key] = data.draw(json_value, label="value")
        elif kind == "suffix" and isinstance(parent[key], str):
            parent[key] += data.draw(nasty_text, label="suffix")
        elif kind == "delete" and isinstance(parent, dict):
            del parent[key]
        elif kind == "add" and isinstance(parent[key], dict):
            parent[key][data.draw(st.text(any_char, max_size=8), label="key")] = data.draw(
                json_value, label="value")


def _serialise(data: st.DataObject, doc: Any) -> bytes:
    text = json.dumps(doc, ensure_ascii=data.draw(st.booleans(), label="ascii"), allow_nan=True)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8


def _case_body(data: st.DataObject) -> bytes:
    shape = data.draw(st.sampled_from(["sample", "sample", "sample", "raw-trick", "any-json",
                                       "bytes"]), label="shape")
    if shape == "bytes":
        return data.draw(st.binary(max_size=200), label="body")
    if shape == "any-json":
        return _serialise(data, data.draw(json_value, label="doc"))
    case = copy.deepcopy(SAMPLES[data.draw(st.sampled_from(sorted(SAMPLES)), label="sample")])
    # a small pool of numbers: new cases, resubmissions (200) and conflicts (409) all happen
    case["applicationNo"] = f"FUZZ{data.draw(st.integers(0, 40), label='no'):012d}"
    if shape == "raw-trick":
        return data.draw(st.sampled_from(RAW_TRICKS), label="trick")(_serialise(data, case))
    _mutate(data, case)
    return _serialise(data, case)


def _headers(data: st.DataObject, names: list[str]) -> list[tuple[str, bytes]]:
    return [(n, data.draw(header_bytes, label=n)) for n in names
            if data.draw(st.booleans(), label=f"send {n}")]


def _quote(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


# -- the properties -------------------------------------------------------------------------------

def exercise_intake(gw: ServedGateway, data: st.DataObject) -> None:
    if data.draw(st.integers(0, 5), label="get?") == 0:
        case_id = data.draw(st.one_of(st.text(any_char, max_size=50), st.uuids().map(str)),
                            label="case id")
        check_answer(gw.request("GET", f"/api/v1/cases/{_quote(case_id) or 'x'}", []))
        return
    ctype = data.draw(st.sampled_from([b"application/json", b"application/json", b"text/plain",
                                       b"application/json; charset=latin-1", b"\xff/\xfe", b""]),
                      label="content type")
    headers = [("Content-Type", ctype), *_headers(data, ["X-Correlation-Id"])]
    answer = gw.request("POST", "/api/v1/cases", headers, _case_body(data))
    doc = check_answer(answer)
    if answer[0] in (200, 202):  # what was stored is served back as standard JSON
        check_answer(gw.request("GET", f"/api/v1/cases/{doc['id']}", []))


ADMIN_ENDPOINTS = [("GET", "/api/v1/admin/dead-letters")] * 3 + [
    ("POST", "/api/v1/admin/dead-letters/replay"), ("POST", "/api/v1/admin/dead-letters/discard"),
    ("POST", "/api/v1/admin/dead-letters/replay"), ("GET", "/api/v1/admin/breakers"),
    ("POST", "/api/v1/admin/reload")]
PARAM_NAMES = ["limit", "partner", "code", "applicationNo", "limt", "all"]
admin_body = st.fixed_dictionaries(
    {"reason": nasty_text},
    optional={"ids": st.one_of(st.lists(st.one_of(st.uuids().map(str), nasty_text), max_size=3),
                               json_value),
              "partner": st.one_of(nasty_text, json_value), "code": nasty_text,
              "applicationNo": nasty_text, "all": st.one_of(st.booleans(), json_value),
              "currentMapping": json_value})


def exercise_admin(gw: ServedGateway, data: st.DataObject) -> None:
    method, path = data.draw(st.sampled_from(ADMIN_ENDPOINTS), label="endpoint")
    pairs = data.draw(st.lists(st.tuples(st.one_of(st.sampled_from(PARAM_NAMES),
                                                   st.text(any_char, max_size=6)),
                                         st.one_of(st.sampled_from(["1", "-1", "abc", "9" * 20,
                                                                    "1000", "national", ""]),
                                                   nasty_text)), max_size=3), label="query")
    query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs)
    token = st.just(f"Bearer {TOKEN}".encode())
    auth = data.draw(st.one_of(token, token, token, header_bytes), label="authorization")
    headers = [("Authorization", auth), *_headers(data, ["X-Operator"])]
    body = None
    if method == "POST":
        headers.append(("Content-Type", b"application/json"))
        body = (_serialise(data, data.draw(admin_body, label="body"))
                if data.draw(st.booleans(), label="object body")
                else _serialise(data, data.draw(json_value, label="body")))
    target = f"{path}?{query}" if query else path
    answer = gw.request(method, target, headers, body)
    if len(target) > MAX_LINE:  # refused by aiohttp's parser before any handler: 4xx, plain text
        assert 400 <= answer[0] < 500, answer
        event("request line over the parser's limit")
    else:
        check_answer(answer)


MAX_LINE = 8190 - len("GET  HTTP/1.1")  # aiohttp's max_line_size for the request line
FUZZ = settings(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_intake_never_answers_5xx_sqlite(sqlite_gateway: ServedGateway, data: st.DataObject) -> None:
    exercise_intake(sqlite_gateway, data)


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_admin_api_never_answers_5xx_sqlite(sqlite_gateway: ServedGateway,
                                            data: st.DataObject) -> None:
    exercise_admin(sqlite_gateway, data)


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_intake_never_answers_5xx_postgres(postgres_gateway: ServedGateway,
                                           data: st.DataObject) -> None:
    exercise_intake(postgres_gateway, data)


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_admin_api_never_answers_5xx_postgres(postgres_gateway: ServedGateway,
                                              data: st.DataObject) -> None:
    exercise_admin(postgres_gateway, data)
