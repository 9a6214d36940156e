"""A YAML loader that remembers line numbers, so load errors can point at the offending line.

Mappings come back as :class:`LDict` / :class:`LList` (plain ``dict``/``list`` subclasses) that
carry ``line`` (1-based line of the node) and, for dicts, ``key_lines`` (line of every key).
Only safe YAML is accepted (no Python tags).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import ConfigError


class LDict(dict):  # type: ignore[type-arg]
    """A dict that knows the line it started on and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        lines: dict[Any, int] = getattr(self, "key_lines", {})
        return lines.get(key, self.line)


class LList(list):  # type: ignore[type-arg]
    line: int = 0


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans, so field names such as
    ``no``, ``on`` or ``y`` stay strings (the YAML 1.1 "Norway problem"). libyaml's parser
    where PyYAML has it (a third of loading the shipped mappings went to the Python parser);
    the resolver and constructors, which give the lines, are Python's either way."""


_LineLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LDict:
    loader.flatten_mapping(node)
    out = LDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise ConfigError("mapping keys must be scalars", line=key_node.start_mark.line + 1)
        if key in out:
            raise ConfigError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LList:
    out = LList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path) -> Any:
    """Parse one YAML file; every failure is a ``ConfigError`` naming the file and line."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", file=file) from e
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except ConfigError as e:
        raise ConfigError(e.reason, file=file, line=e.line) from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {getattr(e, 'problem', None) or e}",
                          file=file, line=line) from e
