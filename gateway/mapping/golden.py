"""Golden fixtures: ``mappings/tests/<mapping name>/<case>.input.json`` → ``<case>.expected.json``
(or ``.expected.xml``), with an optional ``<case>.context.json``. Run by ``gateway mapping test``
and by the test suite; a failure shows a unified diff of the canonical forms.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.errors import GatewayError
from gateway.mapping.registry import MappingRegistry
from gateway.protocols import xml as safexml

DEFAULT_CONTEXT = {"caseId": "C-TEST", "deliveryId": "D-TEST", "idempotencyKey": "K-TEST",
                   "now": "2026-11-30T10:00:00+08:00"}


@dataclass(frozen=True)
class GoldenCase:
    mapping: str
    case: str
    input: Path
    expected: Path
    context: Path | None

    @property
    def id(self) -> str:
        return f"{self.mapping}:{self.case}"


@dataclass(frozen=True)
class GoldenResult:
    case: GoldenCase
    ok: bool
    detail: str = ""


def discover(mappings_dir: Path, only: str | None = None) -> list[GoldenCase]:
    root = mappings_dir / "tests"
    out = []
    for inp in sorted(root.rglob("*.input.json")) if root.is_dir() else []:
        mapping = inp.parent.relative_to(root).as_posix()
        if only and mapping != only and not mapping.startswith(only.rstrip("/") + "/"):
            continue
        case = inp.name[: -len(".input.json")]
        for ext in (".expected.json", ".expected.xml"):
            exp = inp.with_name(case + ext)
            if exp.exists():
                break
        ctx = inp.with_name(case + ".context.json")
        out.append(GoldenCase(mapping, case, inp, exp, ctx if ctx.exists() else None))
    return out


def canonical_xml(el_or_text: Any) -> str:
    """Pretty, attribute-sorted C14N form, for comparing and diffing XML. A document given as
    text or bytes is read by the hardened parser first; the re-parses below only ever see what
    lxml itself serialised."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    if isinstance(el_or_text, str):
        el_or_text = safexml.parse_text(el_or_text)
    elif isinstance(el_or_text, bytes):
        el_or_text = safexml.parse(el_or_text)
    el = etree.fromstring(etree.tostring(el_or_text), parser)
    c14n = etree.tostring(el, method="c14n2")
    return etree.tostring(etree.fromstring(c14n, parser), pretty_print=True, encoding="unicode")


def _json_text(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def context_for(case: GoldenCase) -> dict[str, Any]:
    ctx: dict[str, Any] = dict(DEFAULT_CONTEXT, partner=case.mapping.split("/")[0])
    if case.context is not None:
        ctx.update(json.loads(case.context.read_text(encoding="utf-8")))
    return ctx


def run_case(reg: MappingRegistry, case: GoldenCase) -> GoldenResult:
    if not case.expected.exists():
        return GoldenResult(case, False, f"missing {case.expected.name}")
    try:
        ctx = context_for(case)
        m = reg.get(case.mapping, ctx.pop("_version", None))
        source = json.loads(case.input.read_text(encoding="utf-8"))
        out = m.render(source, ctx)
        m.validate_output(out, source)
    except (GatewayError, ValueError) as e:
        return GoldenResult(case, False, f"{type(e).__name__}: {e}")
    if case.expected.suffix == ".xml":
        got, want = canonical_xml(out), canonical_xml(case.expected.read_bytes())
    else:
        got, want = _json_text(out), _json_text(json.loads(case.expected.read_text("utf-8")))
    if got == want:
        return GoldenResult(case, True)
    diff = difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                f"{case.expected.name} (expected)", f"{case.case} (rendered)")
    return GoldenResult(case, False, "".join(diff))


def run_all(reg: MappingRegistry, only: str | None = None) -> list[GoldenResult]:
    return [run_case(reg, c) for c in discover(reg.mappings_dir, only)]
