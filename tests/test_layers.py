"""The import graph of ``gateway/``, read with ``ast`` (nothing is imported to check it).

Layers, lowest first; a unit (a top-level module or package of ``gateway``) may import its own
modules and units of *lower* layers only, so two units of one layer never know each other::

    0  errors, outcome, catalog,  the vocabulary: import nothing of the gateway
       jsoncodec
    1  security                   TLS contexts, keys, signatures, callers' settings (config
                                  holds their settings models, the wire uses them)
    2  config                     frozen settings
    3  retry, protocols           pure decisions  |  the wire (which produces the outcomes)

``retry`` decides on an :class:`~gateway.outcome.Outcome` and never learns how it was obtained:
no I/O library, nothing of ``gateway.protocols``. Every import counts, also one inside a function
or under ``if TYPE_CHECKING:``: a dependency is a dependency, whenever it is resolved.

Above the layers, top-level units must not form cycles either: no two units import each other,
directly or around a circle. Where two need the same helper, it moves below both (the region
test ``within`` lives in ``domain``, the port messages in ``ports``, the case views in
``views``), never into one of them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"

LAYERS: list[set[str]] = [
    {"errors", "outcome", "catalog", "jsoncodec"},
    {"security"},
    {"config"},
    {"retry", "protocols"},
]
LAYER_OF = {unit: n for n, units in enumerate(LAYERS) for unit in units}

#: What the pure layer must never import (asyncio is fine: the limits are asyncio primitives).
IO_LIBRARIES = {"aiohttp", "ssl", "lxml", "sqlalchemy", "zeep", "asyncpg", "aiosqlite", "socket",
                "http", "urllib", "requests", "httpx", "xmlschema", "jsonschema"}



@dataclass(frozen=True)
class Import:
    source: str   # importing module, dotted
    target: str   # imported module, dotted (a gateway module, or the external name)
    file: str
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line} ({self.source} → {self.target})"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports() -> list[Import]:
    modules = all_modules()
    found: list[Import] = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), rel)):
            if isinstance(node, ast.Import):
                found += [Import(name, a.name, rel, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:  # `from gateway.protocols import soap`: the submodule
                    sub = f"{target}.{alias.name}"
                    found.append(Import(name, sub if sub in modules else target, rel,
                                        node.lineno))
    return found


def unit(module: str) -> str | None:
    """The top-level unit of a gateway module (``gateway.protocols.soap`` → ``protocols``)."""
    parts = module.split(".")
    if parts[0] != "gateway":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def unit_graph(found: list[Import]) -> dict[str, dict[str, list[Import]]]:
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for imp in found:
        a, b = unit(imp.source), unit(imp.target)
        if a is not None and b is not None and a != b:
            graph[a][b].append(imp)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def found() -> list[Import]:
    return imports()


def test_the_reader_sees_imports_of_every_kind(found: list[Import]) -> None:
    """Guards the checks below against passing because nothing was read."""
    edges = {(i.source, i.target) for i in found}
    assert ("gateway.protocols.rest", "gateway.config") in edges              # absolute
    assert ("gateway.protocols.soap_typed", "gateway.protocols.soap") in edges  # from pkg import mod
    assert ("gateway.retry.policy", "gateway.outcome") in edges
    assert ("gateway.protocols.soap", "gateway.catalog") in edges               # inside a function
    assert ("gateway.protocols.classify", "aiohttp") in edges                   # external
    assert set(LAYER_OF) <= {unit(m) for m in all_modules()}


def test_layers_import_only_downward(found: list[Import]) -> None:
    graph = unit_graph(found)
    wrong = [imp.where()
             for source, n in LAYER_OF.items()
             for target, where in graph.get(source, {}).items()
             if LAYER_OF.get(target, len(LAYERS)) >= n
             for imp in where]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_retry_imports_no_io_library_and_no_protocol(found: list[Import]) -> None:
    wrong = [imp.where() for imp in found
             if imp.source.startswith("gateway.retry")
             and (imp.target.split(".")[0] in IO_LIBRARIES
                  or imp.target.startswith(("gateway.protocols", "gateway.store")))]
    assert not wrong, "gateway.retry must stay pure:\n" + "\n".join(wrong)


def test_no_cycles_between_top_level_units(found: list[Import]) -> None:
    graph = unit_graph(found)
    got = cycles({a: set(b) for a, b in graph.items()})
    detail = [imp.where() for c in got for a in sorted(c) for b in sorted(c)
              for imp in graph.get(a, {}).get(b, [])]
    assert not got, f"import cycles {[sorted(c) for c in got]}:\n" + "\n".join(detail)


@pytest.mark.parametrize("package", ["gateway.protocols", "gateway.retry", "gateway.cli"])
def test_no_cycles_between_modules_of(package: str, found: list[Import]) -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in found:
        inside = imp.source.startswith(package + ".") and imp.target.startswith(package + ".")
        if inside and imp.source != imp.target:
            graph[imp.source].add(imp.target)
    assert cycles(graph) == []
