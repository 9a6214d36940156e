"""Typed options of the protocol styles, validated once when a partner's client is built.

Every style declares its ``partners.<name>.options`` as a frozen pydantic model that refuses
unknown keys (a typo must not pass silently); :func:`parse_options` turns the first problem into
a :class:`~gateway.errors.ConfigError` naming ``partners.<name>.options.<key>``. The models hold
no partner's values: what a contract names (fields, codes, encodings) is configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import ConfigError


class StyleOptions(BaseModel):
    """Base of every style's options: frozen, and unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


OptionsT = TypeVar("OptionsT", bound=StyleOptions)


def parse_options(model: type[OptionsT], partner: str, options: Mapping[str, Any]) -> OptionsT:
    """``options`` validated into ``model``; ``ConfigError`` naming the key of the first problem."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise option_error(partner, key, err["msg"]) from None


def option_error(partner: str, key: str, reason: str) -> ConfigError:
    """A ``ConfigError`` for an option whose value the model accepted but the contract does not
    (a field the WSDL lacks, say)."""
    return ConfigError(reason, key=f"partners.{partner}.options.{key}")


def credential(partner: str, credentials: Mapping[str, str], key: str) -> str:
    """A required, non-empty credential; ``ConfigError`` naming ``partners.<name>.credentials.<key>``."""
    value = credentials.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError("is required and must be a non-empty string",
                          key=f"partners.{partner}.credentials.{key}")
    return value


__all__ = ["StyleOptions", "credential", "option_error", "parse_options"]
