"""``/openapi.yaml`` and ``/openapi.json``: the REST API's OpenAPI 3.1 document, open like
``/healthz`` (it describes the API, it holds no data).

The document lives in ``schemas/openapi.yaml`` and references the contracts' JSON Schemas by
their files (``beijing/case.schema.json``), so each schema has one source. A client reading the
served document cannot follow a file path on the gateway's disk, so here each referenced file is
embedded once under ``components/schemas`` and the reference points there. The file's own
``#/$defs/…`` references are rewritten to point into its embedded copy, and its ``$id`` is kept
as ``x-schema-id`` only: with the ``$id`` in place, a tool that honours it (JSON Schema 2020-12)
and one that does not (openapi-spec-validator resolves against the document) would read the
references differently. Built once at start-up: a missing or broken file fails start-up, not a
request.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from gateway.api.keys import SETTINGS
from gateway.errors import ConfigError

DOCUMENT = "openapi.yaml"
_SERVED: web.AppKey[tuple[bytes, bytes]] = web.AppKey("openapi", tuple)


def component_name(ref: str) -> str:
    """``national/envelope.schema.json`` → ``national.envelope`` (a components key)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", ref.removesuffix(".json").replace(".schema", "")
                  .replace("/", "."))


def bundle(path: Path) -> dict[str, Any]:
    """The document at ``path`` with every reference to a schema file beside it embedded."""
    try:
        doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read the OpenAPI document: {e}", file=str(path)) from None
    embedded: dict[str, Any] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                name = component_name(ref)
                if name not in embedded:
                    try:
                        embedded[name] = json.loads((path.parent / ref).read_text(encoding="utf-8"))
                    except (OSError, ValueError) as e:
                        raise ConfigError(f"the OpenAPI document references {ref}: {e}",
                                          file=str(path)) from None
                return {**node, "$ref": f"#/components/schemas/{name}"}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(doc)
    schemas = out.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in embedded.items():
        schema.pop("$schema", None)  # the document's jsonSchemaDialect says it once
        if "$id" in schema:
            schema["x-schema-id"] = schema.pop("$id")
        schemas[name] = _rebase(schema, f"#/components/schemas/{name}")
    return out


def _rebase(node: Any, base: str) -> Any:
    """``#/…`` references inside an embedded schema, made to point into its copy at ``base``."""
    if isinstance(node, dict):
        return {k: (base + v[1:] if k == "$ref" and isinstance(v, str) and v.startswith("#/")
                    else _rebase(v, base)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v, base) for v in node]
    return node


async def serve_yaml(request: web.Request) -> web.Response:
    return web.Response(body=request.app[_SERVED][0], content_type="application/yaml",
                        charset="utf-8")


async def serve_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[_SERVED][1], content_type="application/json",
                        charset="utf-8")


def add_routes(app: web.Application) -> None:
    settings = app[SETTINGS]
    doc = bundle(settings.path(settings.schemas_dir) / DOCUMENT)
    app[_SERVED] = (yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode("utf-8"),
                    json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    app.router.add_get("/openapi.yaml", serve_yaml)
    app.router.add_get("/openapi.json", serve_json)
