"""Every library the gateway's own code imports is a declared dependency of the package.

``./run.sh`` installs the package without the test extra; a module the gateway imports that only
the test extra (or chance) installs works in the suite and fails the demo on a fresh machine
(it did: sealing at rest imported ``cryptography``, declared for the tests only). Imports under
``if TYPE_CHECKING:`` are for mypy; the ``tracing`` extra's OpenTelemetry is imported only when
``observability.tracing`` is on.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
OPTIONAL_EXTRAS = {"tracing": {"opentelemetry"}}   # extra -> modules only its feature imports


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _runtime_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_library_the_gateway_imports_is_a_declared_dependency() -> None:
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    optional = {m for mods in OPTIONAL_EXTRAS.values() for m in mods}
    dists = packages_distributions()
    undeclared: dict[str, set[str]] = {}
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        for module in _runtime_imports(path):
            if module in sys.stdlib_module_names or module in ("gateway", "__future__") \
                    or module in optional:
                continue
            names = {_name(d) for d in dists.get(module, [module])}
            if not names & declared:
                undeclared.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    assert not undeclared, f"imported by the gateway, not in [project] dependencies: {undeclared}"


def test_the_optional_extras_named_here_exist() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    for extra, modules in OPTIONAL_EXTRAS.items():
        assert extra in extras
        assert all(any(_name(r).startswith(m) for r in extras[extra]) for m in modules)
