"""The OpenAPI document (schemas/openapi.yaml) against an independent validator and against the
app's own router (issue 17).

* ``openapi-spec-validator`` (PyPI, not ours) accepts the file as OpenAPI 3.1, its references to
  the contracts' JSON Schema files resolved from disk, and accepts the document the gateway serves
  (those schemas embedded).
* Every route of a real app (``create_app`` with the shipped configuration) is documented with
  its method, and every documented operation is a route: a handler added without its document,
  or a document left behind by a removed handler, fails here. Excluded, and only these: the SOAP
  endpoints (their contract is the WSDL they serve) and the web console's HTML pages.
* The served ``/openapi.yaml`` and ``/openapi.json`` answer without credentials and say the same.
* Requests built from the document's own schemas (every documented operation, with an empty or
  malformed body and with the examples of the case schema) never get a 5xx.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from gateway.api.openapi import bundle
from gateway.app import create_app
from tests.harness import DEFAULT_CONFIG, Gateway, settings_for

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "schemas" / "openapi.yaml"
#: routes with another contract than this document's, by path prefix (the module docstring)
EXCLUDED = {"/soap/": "SOAP endpoints: their WSDLs are the contract",
            "/console": "the operators' web console: HTML pages"}
METHODS = {"get", "post", "put", "patch", "delete"}


def excluded(path: str) -> bool:
    return path.startswith(tuple(EXCLUDED))


def documented() -> set[tuple[str, str]]:
    doc = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item
            if m in METHODS}


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """(method, path template) of every route of an app built from the shipped config (built
    once: loading every contract takes seconds)."""
    tmp_path = tmp_path_factory.mktemp("openapi-routes")
    settings = settings_for(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
                            _shipped_urls())
    app = create_app(settings)
    out = set()
    for r in app.router.routes():
        if r.method == "HEAD" or r.resource is None:
            continue  # aiohttp adds HEAD beside each GET
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", r.resource.canonical)
        out.add((r.method, path))
    return out


def _shipped_urls() -> dict[str, str]:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    return {name: p["url"] for name, p in raw["partners"].items()}


def test_the_file_is_valid_openapi_3_1() -> None:
    spec, base = read_from_filename(str(DOCUMENT))
    validate(spec, base_uri=base)  # references to beijing/…, national/… files resolved
    assert spec["openapi"].startswith("3.1")


def test_the_served_bundle_is_valid_and_self_contained() -> None:
    doc = bundle(DOCUMENT)
    validate(doc)
    text = json.dumps(doc)
    refs = set(re.findall(r'"\$ref": "([^"]+)"', text))
    assert refs and all(r.startswith("#") for r in refs), refs - {r for r in refs if r[0] == "#"}
    assert "beijing.case" in doc["components"]["schemas"]
    # the embedded case schema is the file, its #/$defs refs pointing into its copy
    case = json.loads((ROOT / "schemas" / "beijing" / "case.schema.json").read_text("utf-8"))
    embedded = doc["components"]["schemas"]["beijing.case"]
    assert embedded["x-schema-id"] == case["$id"]
    assert embedded["properties"]["receivingRegion"]["$ref"] == \
        "#/components/schemas/beijing.case/$defs/regionCode"
    assert set(embedded["$defs"]) == set(case["$defs"])


def test_every_route_is_documented_and_every_documented_path_is_routed(
        routes: set[tuple[str, str]]) -> None:
    docs = documented()
    assert any(excluded(p) for _, p in routes), "the exclusions no longer match any route"
    undocumented = sorted(r for r in routes if not excluded(r[1]) and r not in docs)
    assert not undocumented, f"routes without an OpenAPI operation: {undocumented}"
    stale = sorted(docs - routes)
    assert not stale, f"documented operations the app does not route: {stale}"
    assert not [d for d in docs if excluded(d[1])], "an excluded path is documented"


def test_the_check_fails_for_an_undocumented_route(routes: set[tuple[str, str]]) -> None:
    """The comparison itself, with a route added the way a handler module adds one."""
    routes = routes | {("GET", "/api/v1/admin/new-thing")}
    assert [r for r in routes if not excluded(r[1]) and r not in documented()] == \
        [("GET", "/api/v1/admin/new-thing")]


async def test_served_without_credentials_and_no_5xx_for_any_documented_operation(
        tmp_path: Path, db_url: str) -> None:
    settings = settings_for(tmp_path, db_url, _shipped_urls(), enabled=False)
    async with Gateway(settings, signer=None) as gw:  # unsigned: as a stranger would call
        async with gw.http.get("/openapi.yaml") as r:  # type: ignore[union-attr]
            assert r.status == 200 and r.content_type == "application/yaml"
            served = yaml.safe_load(await r.text())
        async with gw.http.get("/openapi.json") as r:  # type: ignore[union-attr]
            assert r.status == 200
            assert await r.json() == served
        validate(served)
        assert served == bundle(DOCUMENT)
        statuses: dict[str, int] = {}
        bodies: list[bytes] = [b"", b"{", b"[]", b'{"a": 1}', "{\"x\": \"\u5317\"}".encode(),
                               json.dumps(_example_case()).encode()]
        for method, path in sorted(documented()):
            url = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
            for body in (bodies if method == "POST" else [b""]):
                async with gw.http.request(  # type: ignore[union-attr]
                        method, url, data=body,
                        headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    statuses[f"{method} {path} {body[:12]!r}"] = r.status
        server_errors = {k: v for k, v in statuses.items() if v >= 500 and v != 503}
        assert not server_errors, server_errors
        # unsigned calls to the guarded API are refused, the open ones answer
        assert statuses["GET /healthz b''"] == 200
        assert statuses["POST /api/v1/cases b''"] == 401


def _example_case() -> dict[str, Any]:
    return json.loads((ROOT / "samples" / "cases" / "01-person-shanghai-social-security.json")
                      .read_text(encoding="utf-8"))


@pytest.mark.parametrize("ref", ["beijing/case.schema.json", "national/envelope.schema.json"])
def test_component_names_are_stable(ref: str) -> None:
    from gateway.api.openapi import component_name
    assert re.fullmatch(r"[A-Za-z0-9._-]+", component_name(ref))
