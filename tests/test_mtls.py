"""Mutual TLS both ways (issue 14), with certificates made inside the test (tests/certs.py).

Toward a partner: the gateway delivers to a simulator served over HTTPS that requires a client
certificate from its CA; a client certificate from another CA, none at all, or a partner whose
certificate the configured CA did not issue, each end as an outcome with a clear message (no
exception escapes, nothing is delivered). From callers: ``gateway serve`` with ``server.tls``
and ``client_ca_file`` refuses a client without a certificate (or with one from another CA) and
serves one with it; a handler can read who connected (``peer_subject``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.outcome import Outcome
from gateway.protocols import transport
from gateway.security.tls import (ClientTls, TlsClientSettings, TlsServerSettings, client_tls,
                                  peer_subject, server_context)
from tests.certs import Issued, TestCA
from tests.harness import ROOT, Gateway, Simulator, edit_config, free_port, write_config


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    """One CA for the partner's and the gateway's certificates, and a stranger CA."""
    ca = TestCA("trusted", tmp_path / "pki")
    other = TestCA("stranger", tmp_path / "pki")
    return {"ca": ca, "other": other,
            "server": ca.issue("partner", server=True),
            "client": ca.issue("bj-gateway"),
            "stranger_client": other.issue("bj-gateway"),
            "stranger_server": other.issue("partner", server=True)}


def requiring_client_certs(server: Issued, client_ca: TestCA) -> ssl.SSLContext:
    """A partner's listening context: its certificate, and client certificates required."""
    return server_context(TlsServerSettings(cert_file=str(server.cert), key_file=str(server.key),
                                            client_ca_file=str(client_ca.cert)))


def tls_block(pki: dict[str, Any], client: str = "client", ca: TestCA | None = None,
              **extra: Any) -> dict[str, Any]:
    issued: Issued = pki[client]
    return {"ca_file": str((ca or pki["ca"]).cert), "cert_file": str(issued.cert),
            "key_file": str(issued.key), **extra}


@contextlib.asynccontextmanager
async def https_partner(ctx: ssl.SSLContext) -> AsyncIterator[tuple[str, list[Any]]]:
    """A tiny HTTPS endpoint answering 200 and recording each caller's certificate subject."""
    seen: list[Any] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(peer_subject(request))
        await request.read()
        return web.json_response({"code": "0"})

    app = web.Application()
    app.router.add_post("/x", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=ctx)
    try:
        yield str(server.make_url("/x")), seen
    finally:
        await server.close()


async def post_with(url: str, tls: ClientTls | None) -> Any:
    async with aiohttp.ClientSession() as http:
        return await transport.post(http, url, b"{}", headers={}, timeout=5, max_bytes=4096,
                                    tls=tls)


def client_of(pki: dict[str, Any], **block: Any) -> ClientTls:
    tls = client_tls("partner", TlsClientSettings(**block))
    assert tls is not None
    return tls


# -- toward a partner ----------------------------------------------------------------------------

async def test_gateway_delivers_to_a_partner_that_requires_client_certificates(
        tmp_path: Path, pki: dict[str, Any], samples: dict[str, Any]) -> None:
    case = samples["01-person-shanghai-social-security"]
    sim = Simulator("national")
    subjects: list[Any] = []

    @web.middleware
    async def who(request: web.Request, handler: Any) -> web.StreamResponse:
        subjects.append(peer_subject(request))
        return await handler(request)

    sim.app.middlewares.append(who)
    await sim.server.start_server(ssl=requiring_client_certs(pki["server"], pki["ca"]))
    async with sim:
        url = sim.url()
        assert url.startswith("https://127.0.0.1:")
        config = edit_config(
            write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", {"national": url}),
            lambda raw: raw["partners"]["national"].update(tls=tls_block(pki)))
        async with Gateway(load_settings(config)) as gw:
            status, doc = await gw.post_case(case)
            assert status == 202, doc
            final = await gw.wait_final(doc["id"])
    [d] = final["deliveries"]
    assert d["state"] == "delivered", d
    assert d["receiptNo"]
    assert len(sim.state.messages) == 1
    assert subjects and subjects[0]["commonName"] == "bj-gateway"


async def test_a_client_certificate_from_another_ca_is_an_outcome_not_a_crash(
        pki: dict[str, Any]) -> None:
    async with https_partner(requiring_client_certs(pki["server"], pki["ca"])) as (url, seen):
        wrong = await post_with(url, client_of(pki, **tls_block(pki, "stranger_client")))
        none = await post_with(url, client_of(pki, ca_file=str(pki["ca"].cert)))
        right = await post_with(url, client_of(pki, **tls_block(pki)))
    for refused in (wrong, none):
        assert isinstance(refused, Outcome), refused
        assert refused.kind in ("retryable", "permanent")
        # TLS 1.3: the partner checks the certificate after the client's handshake is done and
        # resets the connection; the message says what that likely means
        assert "TLS" in refused.message and "partners.partner.tls.cert_file" in refused.message
    assert isinstance(right, transport.HttpReply) and right.status == 200
    assert seen == [{"organizationName": "Gateway test PKI", "commonName": "bj-gateway"}]


async def test_a_partner_certificate_the_configured_ca_did_not_issue_is_permanent(
        pki: dict[str, Any]) -> None:
    async with https_partner(requiring_client_certs(pki["stranger_server"], pki["ca"])) as (url, _):
        got = await post_with(url, client_of(pki, **tls_block(pki)))
        default_trust = await post_with(url, None)  # no tls block: the system's trust store
    assert isinstance(got, Outcome) and got.kind == "permanent"
    assert "TLS certificate rejected" in got.message and "verify failed" in got.message
    assert isinstance(default_trust, Outcome) and default_trust.kind == "permanent"


async def test_server_name_is_the_name_checked_in_the_partners_certificate(
        tmp_path: Path, pki: dict[str, Any]) -> None:
    named = pki["ca"].issue("partner-named", server=True, hosts=("partner.example.cn",))
    async with https_partner(requiring_client_certs(named, pki["ca"])) as (url, _):
        by_address = await post_with(url, client_of(pki, **tls_block(pki)))
        by_name = await post_with(url, client_of(pki, **tls_block(
            pki, server_name="partner.example.cn")))
    assert isinstance(by_address, Outcome) and "TLS certificate rejected" in by_address.message
    assert isinstance(by_name, transport.HttpReply) and by_name.status == 200


def test_verify_false_is_never_silent(pki: dict[str, Any],
                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.tls"):
        tls = client_tls("tianjin", TlsClientSettings(verify=False))
    assert tls is not None and tls.context.verify_mode == ssl.CERT_NONE
    assert "partners.tianjin.tls.verify is false" in caplog.text


def test_tls_1_2_is_the_minimum_both_ways(pki: dict[str, Any]) -> None:
    assert client_of(pki, **tls_block(pki)).context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert requiring_client_certs(pki["server"], pki["ca"]).minimum_version == \
        ssl.TLSVersion.TLSv1_2


# -- configuration: paths only, read at start-up, one line naming the key ------------------------

def _partner_config(tmp_path: Path, tls: dict[str, Any], url: str = "https://127.0.0.1:1/x") -> Path:
    return edit_config(write_config(tmp_path, "sqlite+aiosqlite:///unused.db", {"national": url}),
                       lambda raw: raw["partners"]["national"].update(tls=tls))


@pytest.mark.parametrize("key", ["ca_file", "cert_file", "key_file"])
async def test_a_missing_file_is_a_config_error_naming_its_key(
        tmp_path: Path, pki: dict[str, Any], key: str) -> None:
    from gateway.protocols import create_client
    block = tls_block(pki) | {key: str(tmp_path / "nowhere.pem")}
    s = load_settings(_partner_config(tmp_path, block))
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ConfigError) as e:
            create_client("national", s.partners["national"], http)
    assert e.value.key == f"partners.national.tls.{key}"
    assert "nowhere.pem" in str(e.value) and "\n" not in str(e.value)


async def test_a_key_that_is_not_the_certificates_is_named(tmp_path: Path,
                                                           pki: dict[str, Any]) -> None:
    from gateway.protocols import create_client
    block = tls_block(pki) | {"key_file": str(pki["stranger_client"].key)}
    s = load_settings(_partner_config(tmp_path, block))
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ConfigError) as e:
            create_client("national", s.partners["national"], http)
    assert e.value.key == "partners.national.tls.key_file"
    assert "BEGIN" not in str(e.value)  # never the key's content


async def test_a_tls_block_on_a_plain_http_url_is_refused(tmp_path: Path,
                                                          pki: dict[str, Any]) -> None:
    from gateway.protocols import create_client
    s = load_settings(_partner_config(tmp_path, tls_block(pki), url="http://127.0.0.1:1/x"))
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ConfigError) as e:
            create_client("national", s.partners["national"], http)
    assert e.value.key == "partners.national.url"


def test_relative_paths_are_read_beside_the_config_file(tmp_path: Path,
                                                        pki: dict[str, Any]) -> None:
    s = load_settings(_partner_config(tmp_path, {"ca_file": "pki/trusted-ca.pem"}))
    tls = s.partners["national"].tls
    assert tls is not None and tls.ca_file == str(tmp_path / "pki" / "trusted-ca.pem")


def test_a_certificate_without_its_key_is_refused_at_load(tmp_path: Path,
                                                          pki: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(_partner_config(tmp_path, {"cert_file": str(pki["client"].cert)}))
    assert e.value.key == "partners.national.tls"
    assert "cert_file and key_file go together" in str(e.value)


def test_require_client_cert_needs_a_client_ca(pki: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="require_client_cert needs client_ca_file"):
        TlsServerSettings(cert_file=str(pki["server"].cert), key_file=str(pki["server"].key),
                          require_client_cert=True)


# -- from callers: gateway serve with server.tls -------------------------------------------------

def _client_ctx(pki: dict[str, Any], client: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
    if client is not None:
        ctx.load_cert_chain(str(pki[client].cert), str(pki[client].key))
    return ctx


async def _get(url: str, ctx: ssl.SSLContext) -> int | str:
    """The status of GET ``url``, or the name of the error that stopped it."""
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(url, ssl=ctx, timeout=aiohttp.ClientTimeout(total=5)) as r:
            await r.read()
            return r.status
    except (aiohttp.ClientError, ssl.SSLError, OSError) as e:
        return type(e).__name__


@contextlib.contextmanager
def serving(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config",
                                 str(config), "--port", str(port)], stdout=out, stderr=out,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=ROOT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_gateway_serve_requires_a_client_certificate(tmp_path: Path,
                                                           pki: dict[str, Any]) -> None:
    port = free_port()
    config = edit_config(
        write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", {}),
        lambda raw: raw["server"].update(tls={"cert_file": str(pki["server"].cert),
                                              "key_file": str(pki["server"].key),
                                              "client_ca_file": str(pki["ca"].cert)}))
    url = f"https://127.0.0.1:{port}/healthz"
    log = tmp_path / "serve.log"
    with serving(config, port, log) as proc:
        deadline = time.monotonic() + 40
        while (got := await _get(url, _client_ctx(pki, "client"))) != 200:
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, f"{got}: {log.read_text()[-2000:]}"
            await asyncio.sleep(0.1)
        assert await _get(url, _client_ctx(pki, None)) != 200
        assert await _get(url, _client_ctx(pki, "stranger_client")) != 200
        plain = await _get(f"http://127.0.0.1:{port}/healthz", _client_ctx(pki, None))
        assert plain != 200


def test_gateway_serve_names_an_unreadable_server_key(tmp_path: Path,
                                                      pki: dict[str, Any]) -> None:
    config = edit_config(
        write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", {}),
        lambda raw: raw["server"].update(tls={"cert_file": str(pki["server"].cert),
                                              "key_file": str(tmp_path / "gone.key")}))
    done = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(config),
                           "--port", str(free_port())], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "server.tls.key_file: cannot read" in lines[0], done.stderr


def test_the_transport_security_example_loads() -> None:
    env = {"GATEWAY_CITY_CALLER_TOKEN": "example-caller-token-0001",
           "GATEWAY_PROVINCE_X_HMAC_SECRET": "example-secret",
           "GATEWAY_PROVINCE_X_INBOUND_SECRET": "example-inbound-secret",
           "GATEWAY_HEBEI_PASSWORD": "example-password",
           "GATEWAY_HEBEI_INBOUND_PASSWORD": "example-inbound-password"}
    example = ROOT / "config" / "examples" / "transport-security.yaml"
    s = load_settings(example, env=env)
    assert s.server.tls is not None and s.server.tls.client_certs == "required"
    assert s.server.tls.key_file == str(example.parent / "tls" / "gateway-server.key")
    x = s.partners["province-x"]
    assert x.tls is not None and x.tls.server_name == "exchange.province-x.example.cn"
    assert x.inbound is not None and (x.inbound.max_age, x.inbound.max_ahead) == (300, 60)
    from gateway.protocols.options import request_auth
    signer = request_auth("province-x", x.options["auth"], x.credentials, x.options["auth_options"])
    assert signer is not None
