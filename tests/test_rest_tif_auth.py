"""A rest-json partner configured with ``options.auth: x-tif`` (config/examples/city-partner.yaml)
pushes status events rendered by ``mappings/city/status-push.yaml`` to the city simulator over
a real socket: accepted with a receipt; a wrong token refused with 401 (a permanent outcome); a
replayed nonce refused; the scheme and its credentials checked at load."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry
from gateway.outcome import OutcomeKind
from gateway.protocols import create_client
from gateway.protocols.rest import RestJsonClient, RestJsonOptions
from gateway.protocols.tif import TifSigner
from gateway.simulators import simulator_factory
from gateway.simulators.base import SIM_STATE
from gateway.simulators.city import DEMO_PAASID, DEMO_TOKEN, STATUS_EVENTS
from tests.harness import TEST_SECRETS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "examples" / "city-partner.yaml"
GOLDEN = ROOT / "mappings" / "tests" / "city" / "status-push"
ENV = {**TEST_SECRETS, "GATEWAY_CITY_TIF_TOKEN": DEMO_TOKEN}


def city_config(tmp_path: Path, url: str, edit: Any = None) -> Path:
    """The shipped configuration with only the example's ``city`` partner, pointed at ``url``."""
    raw = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8"))
    city = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["partners"]["city"]
    city["url"] = url
    if edit is not None:
        edit(city)
    raw["partners"] = {"city": city}
    raw["routes"] = []
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def city_settings(tmp_path: Path, url: str, env: dict[str, str] | None = None,
                  edit: Any = None) -> Settings:
    return load_settings(city_config(tmp_path, url, edit), env=ENV if env is None else env)


@pytest.fixture
async def city() -> AsyncIterator[tuple[str, Any]]:
    app = simulator_factory("city")()
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url(STATUS_EVENTS)), app[SIM_STATE]


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load(ROOT / "mappings", ROOT / "schemas")


def pushed(registry: MappingRegistry, case: str) -> dict[str, Any]:
    """A golden canonical event rendered by the push mapping, as the outbox would."""
    source = json.loads((GOLDEN / f"{case}.input.json").read_text(encoding="utf-8"))
    m = registry.get("city/status-push")
    payload: dict[str, Any] = m.render(source, {"partner": "city",
                                                "now": "2026-12-03T16:05:12+08:00"})
    m.validate_output(payload, source)
    return payload


async def test_a_signed_push_is_accepted_and_every_attempt_is_signed_anew(
        tmp_path: Path, city: tuple[str, Any], registry: MappingRegistry) -> None:
    url, state = city
    settings = city_settings(tmp_path, url)
    payload = pushed(registry, "02-tianjin-finished-with-licence-utc")
    async with aiohttp.ClientSession() as http:
        client = create_client("city", settings.partners["city"], http)
        first = await client.send(payload, idempotency_key=payload["eventId"],
                                  correlation_id="corr-city-1")
        again = await client.send(payload, idempotency_key=payload["eventId"],
                                  correlation_id="corr-city-1")
        await client.close()
    assert first.kind is OutcomeKind.DELIVERED, first
    assert first.receipt_no is not None and first.receipt_no.startswith("BJSJ")
    # a resend (a retry after a lost reply) carries a new nonce: accepted, deduped on eventId
    assert again.kind is OutcomeKind.DELIVERED and again.receipt_no == first.receipt_no
    summary = state.summary()
    assert summary["statusEvents"] == {"received": 2, "unique": 1, "duplicates": 1}
    assert summary["rejected"] == {}
    headers = [m["headers"] for m in summary["messages"]]
    assert [h["x-tif-paasid"] for h in headers] == [DEMO_PAASID, DEMO_PAASID]
    assert headers[0]["X-Idempotency-Key"] == payload["eventId"]
    assert summary["messages"][0]["payload"] == payload
    assert summary["cases"]["BJ2026113000000004"]["items"]["2"]["result"] == "APPROVED"


async def test_a_wrong_token_is_refused_with_401_and_not_retried(
        tmp_path: Path, city: tuple[str, Any], registry: MappingRegistry) -> None:
    url, state = city
    settings = city_settings(tmp_path, url,
                             env={**TEST_SECRETS, "GATEWAY_CITY_TIF_TOKEN": "not-the-token"})
    payload = pushed(registry, "01-national-accepted")
    async with aiohttp.ClientSession() as http:
        client = create_client("city", settings.partners["city"], http)
        outcome = await client.send(payload, idempotency_key=payload["eventId"],
                                    correlation_id="corr-city-2")
    assert outcome.kind is OutcomeKind.PERMANENT and outcome.http_status == 401, outcome
    assert "x-tif-signature does not verify" in outcome.message
    assert "not-the-token" not in outcome.message and DEMO_TOKEN not in outcome.message
    assert state.summary()["received"] == 0 and state.rejected == {"bad_signature": 1}


async def test_a_replayed_nonce_is_refused(tmp_path: Path, city: tuple[str, Any],
                                           registry: MappingRegistry) -> None:
    """A signer that repeats its nonce (a broken random source, or a captured request sent
    again) gets the second request refused, even within the window and with a valid token."""
    url, state = city
    settings = city_settings(tmp_path, url).partners["city"]
    options = RestJsonOptions.model_validate(settings.options)
    stuck = TifSigner(DEMO_PAASID, DEMO_TOKEN, nonce_source=lambda: "the-same-nonce-0001")
    first, second = pushed(registry, "01-national-accepted"), \
        pushed(registry, "03-hebei-two-items-supplement-no-bundle")
    async with aiohttp.ClientSession() as http:
        client = RestJsonClient("city", settings, http, options, stuck)
        ok = await client.send(first, idempotency_key=first["eventId"], correlation_id="c-3")
        replay = await client.send(second, idempotency_key=second["eventId"],
                                   correlation_id="c-3")
    assert ok.kind is OutcomeKind.DELIVERED
    assert replay.kind is OutcomeKind.PERMANENT and replay.http_status == 401
    assert "x-tif-nonce was already used" in replay.message
    assert state.summary()["statusEvents"]["received"] == 1
    assert state.rejected == {"reused_nonce": 1}


def test_an_unknown_scheme_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    settings = city_settings(tmp_path, "http://127.0.0.1:9/x",
                             edit=lambda c: c["options"].update(auth="x-tiff"))
    with pytest.raises(ConfigError) as e:
        create_client("city", settings.partners["city"], None)  # type: ignore[arg-type]
    assert e.value.key == "partners.city.options.auth"
    assert "x-tif" in e.value.reason and "none" in e.value.reason


def test_x_tif_needs_both_credentials(tmp_path: Path) -> None:
    settings = city_settings(tmp_path, "http://127.0.0.1:9/x",
                             edit=lambda c: c["credentials"].pop("token"))
    with pytest.raises(ConfigError) as e:
        create_client("city", settings.partners["city"], None)  # type: ignore[arg-type]
    assert e.value.key == "partners.city.credentials.token"


def test_the_token_comes_from_the_environment_and_is_kept_out_of_logs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        city_settings(tmp_path, "http://127.0.0.1:9/x", env={})
    assert e.value.key == "partners.city.credentials.token"
    assert "GATEWAY_CITY_TIF_TOKEN" in e.value.reason
    from gateway.observability.logs import protect_secrets
    from gateway.observability.redaction import clear_secrets, scrub
    settings = city_settings(tmp_path, "http://127.0.0.1:9/x",
                             env={**TEST_SECRETS, "GATEWAY_CITY_TIF_TOKEN": "s3cret-city-token-42"})
    try:
        protect_secrets(settings)
        assert "s3cret-city-token-42" not in scrub("signing with s3cret-city-token-42 now")
    finally:
        clear_secrets()


def test_other_rest_partners_stay_unsigned(tmp_path: Path) -> None:
    from gateway.config import load_settings as load
    national = load(ROOT / "config" / "gateway.yaml", env=TEST_SECRETS).partners["national"]
    client = create_client("national", national, None)  # type: ignore[arg-type]
    assert isinstance(client, RestJsonClient) and client.auth is None
