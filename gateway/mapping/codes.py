"""Reusable code tables (``mappings/codes/<name>.yaml``): applicant types, certificate types,
statuses, channels… Loaded once per registry; a mapping refers to them by name.

Keys must be written as strings in YAML (``"001"``; an unquoted ``001`` would be read as the
number 1), values keep their YAML type (national ``userProp`` is the integer 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.mapping.yamlload import LDict, load_yaml

_MISSING = object()


@dataclass(frozen=True)
class CodeTable:
    name: str
    file: str
    forward: dict[Any, Any]
    reverse: dict[Any, Any] | None          # None: not one-to-one and no explicit reverse
    default: Any = _MISSING
    description: str = ""
    lines: dict[Any, int] = field(default_factory=dict)

    def encode(self, v: Any) -> Any:
        try:
            return self.forward[v]
        except (KeyError, TypeError):
            pass
        s = str(v)
        if s in self.forward:
            return self.forward[s]
        if self.default is not _MISSING:
            return self.default
        raise ValueError(f"code {v!r} is not in table {self.name}")

    def decode(self, v: Any) -> Any:
        assert self.reverse is not None
        try:
            return self.reverse[v]
        except (KeyError, TypeError):
            pass
        s = str(v)
        if s in self.reverse:
            return self.reverse[s]
        raise ValueError(f"code {v!r} has no reverse in table {self.name}")


def _table(path: Path, name: str) -> CodeTable:
    file = str(path)
    raw = load_yaml(path)
    if not isinstance(raw, LDict) or "map" not in raw:
        raise ConfigError("a code table needs a 'map:' of code → code", file=file)
    unknown = set(raw) - {"map", "default", "reverse", "description"}
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)}", file=file, line=raw.line)
    m = raw["map"]
    if not isinstance(m, LDict) or not m:
        raise ConfigError("'map' must be a non-empty mapping", file=file, line=raw.line_of("map"))
    for k in m:
        if not isinstance(k, str):
            raise ConfigError(f"code {k!r} must be quoted (write \"{k}\")", file=file,
                              line=m.line_of(k))
    forward = dict(m)
    rev_raw = raw.get("reverse")
    reverse: dict[Any, Any] | None
    if rev_raw is not None:
        if not isinstance(rev_raw, dict):
            raise ConfigError("'reverse' must be a mapping", file=file, line=raw.line_of("reverse"))
        reverse = dict(rev_raw)
    else:
        reverse = {}
        for k, v in forward.items():
            if v in reverse:
                reverse = None
                break
            reverse[v] = k
        if reverse is not None:
            reverse.update({str(v): k for v, k in list(reverse.items()) if str(v) not in reverse})
    default = raw["default"] if "default" in raw else _MISSING
    return CodeTable(name, file, forward, reverse, default, str(raw.get("description", "")),
                     dict(m.key_lines))


def load_tables(codes_dir: Path) -> dict[str, CodeTable]:
    """Every ``*.yaml`` in ``codes_dir`` (sub-folders give ``sub/name``)."""
    tables: dict[str, CodeTable] = {}
    if not codes_dir.is_dir():
        return tables
    for path in sorted(codes_dir.rglob("*.yaml")):
        name = path.relative_to(codes_dir).with_suffix("").as_posix()
        tables[name] = _table(path, name)
    return tables
