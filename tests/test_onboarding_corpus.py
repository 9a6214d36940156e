"""Onboarding corpus (issue 16): eleven small synthetic third-party WSDL sets of the kinds
integrators meet (``tests/corpus/*/``, written by the project; no real data) run through what an
integration engineer does.

For every set, ``gateway mapping scaffold`` runs as the real CLI (a subprocess): it never shows a
traceback and either writes a skeleton (exit 0) or refuses with a named reason (exit 2, the
reason listed in the set's ``corpus.yaml``). Where a set carries a filled mapping (the
skeleton's fields filled in: ``mapping.yaml``, ``source.json``):

- the skeleton names the same target schema and element the filled mapping uses (so the
  skeleton is usable as written, inline WSDL schemas included);
- the mapping loads, renders and passes ``validate_output``;
- the **serialised bytes**, parsed again, validate with lxml against the WSDL's schemas;
- zeep — the independent reference — parses those bytes strictly against its own reading of the
  WSDL, renders the values it read back, and gets a structurally identical element (same
  namespaces, names, order and text); and a zeep binding deserialises the whole SOAP envelope
  (SOAP 1.1 or 1.2, as the binding says) as a zeep-based server would.

"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree

from gateway import catalog
from gateway.mapping import MappingRegistry
from gateway.mapping.golden import DEFAULT_CONTEXT
from gateway.protocols import soap
from gateway.protocols import xml as safexml

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
SETS = sorted(p.name for p in CORPUS.iterdir() if (p / "corpus.yaml").is_file())
FILLED = [s for s in SETS if "filled" in yaml.safe_load((CORPUS / s / "corpus.yaml").read_text())]


def _spec(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((CORPUS / name / "corpus.yaml").read_text())
    return spec


# One fresh interpreter runs the ``gateway`` command's entry point (click standalone mode: its own
# exit codes and messages, stdout and stderr apart) once per set: eleven processes would spend
# most of a minute importing the gateway. An exception escaping the command is printed as the
# interpreter would print it, so a traceback is seen as one. test_scaffold_as_its_own_process
# runs one set as a plain ``python -m gateway`` subprocess too.
_DRIVER = """
import contextlib, io, json, os, sys, traceback
from gateway.cli import main
out = {}
for name, folder, args in json.loads(sys.argv[1]):
    os.chdir(folder)
    so, se = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        try:
            main.main(args=args, prog_name="gateway", standalone_mode=True)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
    out[name] = [code, so.getvalue(), se.getvalue()]
print(json.dumps(out))
"""


def _args(name: str) -> list[str]:
    return ["mapping", "scaffold", *map(str, _spec(name)["scaffold"]), "--schemas", str(CORPUS)]


@pytest.fixture(scope="module")
def scaffolds() -> dict[str, subprocess.CompletedProcess[str]]:
    jobs = json.dumps([[n, str(CORPUS / n), _args(n)] for n in SETS])
    run = subprocess.run([sys.executable, "-c", _DRIVER, jobs], capture_output=True, text=True,
                         timeout=100, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    return {n: subprocess.CompletedProcess(_args(n), *got[n]) for n in SETS}


def test_scaffold_as_its_own_process() -> None:
    """The plain CLI, one process: a refused set exits 2 with its named reason."""
    run = subprocess.run([sys.executable, "-m", "gateway", *_args("rpc-encoded")],
                         capture_output=True, text=True, timeout=60, cwd=CORPUS / "rpc-encoded")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert _spec("rpc-encoded")["refusal"] in run.stderr


def test_the_corpus_has_the_kinds_the_issue_lists() -> None:
    assert len(SETS) == 11 and len(FILLED) >= 6, (SETS, FILLED)


@pytest.mark.parametrize("name", SETS)
def test_scaffold_never_crashes(name: str,
                                scaffolds: dict[str, subprocess.CompletedProcess[str]]) -> None:
    spec, run = _spec(name), scaffolds[name]
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    if spec["expect"] == "ok":
        assert run.returncode == 0, run.stderr
        skeleton = yaml.safe_load(run.stdout)
        assert skeleton["version"] == "1" and "fields" in skeleton
        for text in spec.get("skeleton_mentions", []):
            assert text in run.stdout, text
    else:
        assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
        assert spec["refusal"] in run.stderr, run.stderr


def _structure(el: Any) -> Any:
    """Namespaces, names, order, attributes and text of an element tree, prefixes ignored."""
    text = (el.text or "").strip()
    return (el.tag, tuple(sorted(el.attrib.items())), text,
            tuple(_structure(c) for c in el if isinstance(c.tag, str)))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> MappingRegistry:
    """The filled mappings as a mappings folder of partner ``corpus`` (schemas: the corpus)."""
    folder = tmp_path_factory.mktemp("mappings")
    (folder / "corpus").mkdir()
    for name in FILLED:
        shutil.copy(CORPUS / name / _spec(name)["filled"]["mapping"],
                    folder / "corpus" / f"{name}.yaml")
    return MappingRegistry.load(folder, CORPUS)


@pytest.mark.parametrize("name", FILLED)
def test_filled_mapping_is_valid_on_the_wire_and_zeep_agrees(
        name: str, registry: MappingRegistry,
        scaffolds: dict[str, subprocess.CompletedProcess[str]]) -> None:
    spec = _spec(name)
    folder = CORPUS / name
    m = registry.get(f"corpus/{name}")
    target = yaml.safe_load((folder / spec["filled"]["mapping"]).read_text())["target"]
    skeleton = yaml.safe_load(scaffolds[name].stdout)
    if "target" in skeleton:   # the skeleton points at the very schema and element filled in
        assert skeleton["target"]["schema"] == target["schema"]
        assert skeleton["target"]["element"] == target["element"]

    source = json.loads((folder / spec["filled"]["source"]).read_text(encoding="utf-8"))
    payload = m.render(source, dict(DEFAULT_CONTEXT, partner="corpus"))
    m.validate_output(payload, source)

    wire = etree.tostring(payload, encoding="utf-8", xml_declaration=True)
    read = safexml.parse(wire)
    schema_file = CORPUS / target["schema"]
    validator = safexml.load_schema(schema_file, CORPUS)
    assert validator.validate(read), validator.error_log

    # zeep, from its own reading of the WSDL
    wsdl = folder / spec["filled"].get("wsdl", schema_file.name)
    opts = spec["filled"].get("operation", {})
    op = soap.load_operation(wsdl, opts.get("name") or spec["filled"]["operation_name"],
                             binding=opts.get("binding"))
    client = op.zeep_client
    binding = next(b for b in client.wsdl.bindings.values() if op.name in b._operations
                   and (not opts.get("binding")
                        or etree.QName(b.name).localname == opts["binding"]))
    message = binding._operations[op.name].input
    # a global element, or (rpc) the wrapper zeep builds from the operation and its parts
    element = message.body if str(message.body.qname) == target["element"] \
        else client.get_element(target["element"])
    value = element.parse(read, client.wsdl.types)           # strict: unknown content raises
    again = etree.Element("_")
    element.render(again, value)
    assert _structure(again[0]) == _structure(read)

    envelope = safexml.parse(soap.build_envelope(op.version, read))
    body = message.deserialize(envelope)
    assert body is not None
    for key, expected in spec["filled"].get("zeep_reads", {}).items():
        got: Any = body
        for part in key.split("."):
            got = got[int(part)] if part.isdigit() else getattr(got, part)
        assert str(got) == str(expected), key


def test_catalog_is_reset() -> None:
    """Nothing in this module leaves an engineer's catalog folder in force."""
    assert catalog.catalog_folders() == ()
