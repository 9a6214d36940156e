"""Partner and source schemas, loaded once per registry and shared by every mapping that names
them. Also the validators used on the hot path.

Validator choice (measured in ``bench/bench_mapping.py``): XML output is validated with lxml's
``XMLSchema`` (libxml2, an order of magnitude faster than ``xmlschema``); ``xmlschema`` is used
only at load, to read the XSD's structure (order, namespaces, types, cardinality) for the compiler.
JSON output is validated with ``jsonschema``'s Draft 2020-12 validator built once per schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from lxml import etree

from gateway import catalog
from gateway.errors import ConfigError, FieldProblem
from gateway.mapping.jsonview import JsonView
from gateway.mapping.xsdmodel import load_schema
from gateway.protocols import xml as safexml
from gateway.schemacheck import describe_error, fast_validity, human_validator


@dataclass
class JsonSchema:
    path: Path
    doc: dict[str, Any]
    view: JsonView
    validator: Any
    #: compiled yes/no (:func:`gateway.schemacheck.fast_validity`), None if not applicable
    fast: Any = None

    def errors(self, payload: Any) -> list[tuple[list[Any], str]]:
        """(path as keys and indices, what is wrong in words) per violation, in path order.
        A missing field is reported at its own path, not at the object lacking it. A valid
        payload costs only the compiled check."""
        if self.fast is not None and self.fast(payload):
            return []
        errs = sorted(self.validator.iter_errors(payload),
                      key=lambda e: [str(p) for p in e.absolute_path])
        return [(list(e.absolute_path), describe_error(e)) for e in errs]

    def problems(self, payload: Any) -> list[FieldProblem]:
        return [FieldProblem("/" + "/".join(str(p) for p in path), message)
                for path, message in self.errors(payload)]


@dataclass
class XsdSchema:
    path: Path
    model: Any            # xmlschema.XMLSchema: structure for the compiler
    validator: etree.XMLSchema

    def errors(self, element: Any) -> list[tuple[Any, str]]:
        """(the failing element or None, libxml2's message) per violation."""
        if self.validator.validate(element):
            return []
        tree = element.getroottree()
        out = []
        log: Any = self.validator.error_log
        # libxml2 writes paths with the document's prefixes (``/ns0:Doc/*[7]``)
        prefixes = {k: v for el in element.iter() if isinstance(el.tag, str)
                    for k, v in el.nsmap.items() if k} if any(
                        e.path and ":" in e.path for e in log) else {}
        for e in log:
            found: Any = None
            if e.path:
                try:
                    hits = tree.xpath(e.path, namespaces=prefixes)
                    found = hits[0] if hits else None
                except etree.XPathError:
                    found = None
            out.append((found, e.message))
        return out

    def problems(self, element: Any) -> list[FieldProblem]:
        if self.validator.validate(element):
            return []
        log: Any = self.validator.error_log
        return [FieldProblem(e.path or f"line {e.line}", e.message) for e in log]


class SchemaCache:
    """Loads each schema file once; errors become ``ConfigError`` naming the schema and the
    mapping (file, line) that referred to it."""

    def __init__(self, schemas_dir: Path) -> None:
        self.dir = schemas_dir
        self._json: dict[Path, JsonSchema] = {}
        self._xsd: dict[Path, XsdSchema] = {}

    def resolve(self, rel: str, *, file: str, line: int | None, base: Path | None = None) -> Path:
        p = Path(rel)
        candidates = [p] if p.is_absolute() else [self.dir / p] + ([base / p] if base else [])
        for c in candidates:
            if c.is_file():
                return c.resolve()
        raise ConfigError(f"schema {rel!r} not found under {self.dir}", file=file, line=line,
                          key="schema")

    def json(self, path: Path, *, file: str, line: int | None) -> JsonSchema:
        if path not in self._json:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                cls = jsonschema.validators.validator_for(doc, default=jsonschema.Draft202012Validator)
                cls.check_schema(doc)
            except (OSError, ValueError, jsonschema.SchemaError) as e:
                raise ConfigError(f"schema {path.name} cannot be used: {e}", file=file,
                                  line=line, key="schema") from e
            fast = fast_validity(doc) if cls is jsonschema.Draft202012Validator else None
            self._json[path] = JsonSchema(path, doc, JsonView(doc), human_validator(cls)(doc),
                                          fast)
        return self._json[path]

    def for_namespace(self, namespace: str | None) -> XsdSchema | None:
        """An XSD for ``namespace``: one of the schemas loaded here (mapping targets), else the
        bundled catalog's (XML-DSig, WS-Security…); None when neither has it. Used to validate
        a document injected into an ``xs:any`` by its own schema."""
        if not namespace:
            return None
        for x in list(self._xsd.values()):
            if x.model.target_namespace == namespace:
                return x
        found = catalog.NAMESPACES.get(namespace)
        if found is None:
            return None
        try:
            return self.xsd(found, file=str(found), line=None)
        except ConfigError:
            return None

    def xsd(self, path: Path, *, file: str, line: int | None) -> XsdSchema:
        if path not in self._xsd:
            try:
                model = load_schema(path, self.dir)
                validator = safexml.load_schema(path, self.dir)
            except Exception as e:  # xmlschema/lxml raise many types; all mean "unusable schema"
                raise ConfigError(f"XSD {path.name} cannot be used: {e}", file=file, line=line,
                                  key="schema") from e
            self._xsd[path] = XsdSchema(path, model, validator)
        return self._xsd[path]
