"""Walk a JSON Schema by field names, following local ``$ref``s.

Used at load to check source paths and target field names, and by ``coverage``/``scaffold``.
Only what mappings need: ``properties``, ``additionalProperties``, ``items``, ``$ref`` to
``#/...``, ``allOf`` merged for property lookup. Anything open (no ``properties``, or
``additionalProperties`` not false) accepts every name.
"""

from __future__ import annotations

from typing import Any

ANY: dict[str, Any] = {}
"""The schema that allows anything (used for open objects)."""


class JsonView:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, node: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 32:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                return ANY
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) \
                    if isinstance(target, dict) else {}
            node = target
            seen += 1
        return node if isinstance(node, dict) else ANY

    def properties(self, node: Any) -> dict[str, Any] | None:
        """Declared properties, or ``None`` when the object is open to any name."""
        node = self.resolve(node)
        props = dict(node.get("properties", {}))
        for sub in node.get("allOf", []):
            props.update(self.properties(sub) or {})
        if node.get("additionalProperties", True) is not False and not props:
            return None
        if node.get("additionalProperties", True) is not False:
            return None
        return props

    def child(self, node: Any, key: str) -> dict[str, Any] | None:
        """Schema of ``node[key]``; ``ANY`` for open objects; ``None`` if the name is unknown."""
        schema = self.resolve(node)
        if schema is ANY:
            return ANY
        props = self.properties(schema)
        if props is None:
            declared = schema.get("properties", {})
            if key in declared:
                return self.resolve(declared[key])
            extra = schema.get("additionalProperties")
            return self.resolve(extra) if isinstance(extra, dict) else ANY
        if key in props:
            return self.resolve(props[key])
        return None

    def item(self, node: Any) -> dict[str, Any]:
        node = self.resolve(node)
        items = node.get("items")
        return self.resolve(items) if isinstance(items, dict) else ANY

    def is_array(self, node: Any) -> bool:
        return self.resolve(node).get("type") == "array"

    def required(self, node: Any) -> list[str]:
        node = self.resolve(node)
        req = list(node.get("required", []))
        for sub in node.get("allOf", []):
            req += self.required(sub)
        return req

    def enum(self, node: Any) -> list[Any] | None:
        node = self.resolve(node)
        if "enum" in node:
            return list(node["enum"])
        if "const" in node:
            return [node["const"]]
        return None

    def type_ok(self, node: Any, value: Any) -> bool:
        """Whether a constant fits the declared type/enum (a load-time type-mismatch check)."""
        node = self.resolve(node)
        enum = self.enum(node)
        if enum is not None:
            return value in enum and type(value) in {type(e) for e in enum}
        t = node.get("type")
        kinds = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
                 "object": dict, "array": list}
        if isinstance(t, str) and t in kinds:
            if t in ("integer", "number") and isinstance(value, bool):
                return False
            return isinstance(value, kinds[t])  # type: ignore[arg-type]
        return True

    def describe(self, node: Any) -> str:
        node = self.resolve(node)
        enum = self.enum(node)
        if enum is not None:
            return "enum " + "|".join(map(str, enum))
        t = node.get("type", "any")
        return t if isinstance(t, str) else "|".join(t)
