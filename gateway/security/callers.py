"""Who may call the gateway's API, and what each caller may do: deny by default.

Each caller in ``callers:`` (config) has a ``paasid`` and a ``token`` (its ``x-tif`` credentials,
gateway/api/auth.py) and lists what it may do; anything not listed is refused:

* ``permissions``: ``submit`` (POST /api/v1/cases), ``read`` (GET a case *it* submitted),
  ``read_any`` (GET any case: an operator's console), and the admin operations, one each:
  ``dead_letters.list``, ``dead_letters.replay``, ``dead_letters.discard``, ``breakers.read``,
  ``contracts.reload`` (:data:`ADMIN_ROUTES`); ``inbound.status`` (the city platform reporting
  an inbound case's status, POST /api/v1/inbound-cases/{receiptNo}/status).
* ``items``: the items it may submit, by ``basicCode`` or ``implementationCode``, exactly or
  ``PREFIX*`` as in route rules (``*`` alone: any); an item matching neither is refused.
* ``regions``: region code prefixes (``"12"`` Tianjin, ``"1201"`` a city; ``*``: any) every
  item's ``handlingRegion`` and each of its ``jointRegions`` must lie in.
* ``identity``: ``masked`` (default) shows ID numbers and phone numbers of natural persons
  masked in every case it reads (gateway/security/masking.py); ``full`` shows them as stored.

A refused submission is a 403 naming the field pointer and the caller; nothing is stored.
Reading a case of another caller answers 404 exactly like a missing id: a 403 would confirm
that the id exists, and case ids are the only handle on a citizen's application.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.errors import FieldProblem, InputError

Permission = Literal["submit", "read", "read_any", "dead_letters.list", "dead_letters.replay",
                     "dead_letters.discard", "breakers.read", "contracts.reload", "inbound.status"]

#: The admin API's routes (method, path) and the permission each needs.
ADMIN_ROUTES: Mapping[tuple[str, str], Permission] = {
    ("GET", "/api/v1/admin/dead-letters"): "dead_letters.list",
    ("POST", "/api/v1/admin/dead-letters/replay"): "dead_letters.replay",
    ("POST", "/api/v1/admin/dead-letters/discard"): "dead_letters.discard",
    ("GET", "/api/v1/admin/breakers"): "breakers.read",
    ("POST", "/api/v1/admin/reload"): "contracts.reload",
}
#: The case API's routes (method, route pattern) and the permission each needs (reading is
#: ``read`` or ``read_any``: the handler tells whose case it is).
CASE_ROUTES: Mapping[tuple[str, str], Permission] = {
    ("POST", "/api/v1/cases"): "submit",
    ("GET", "/api/v1/cases/{case_id}"): "read",
    # the city platform reports an inbound case's status (gateway/inbound/status.py)
    ("POST", "/api/v1/inbound-cases/{receipt_no}/status"): "inbound.status",
}

_PAASID = re.compile(r"[\x21-\x7e]{1,128}")
_CODE = re.compile(r"[0-9A-Za-z]+\*?|\*")
_REGION = re.compile(r"[0-9]{1,12}|\*")


class CallerSettings(BaseModel):
    """One caller's credentials and what it may do (module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paasid: str
    token: str = Field(repr=False, min_length=16)
    permissions: tuple[Permission, ...] = ()
    items: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    identity: Literal["full", "masked"] = "masked"

    @field_validator("paasid")
    @classmethod
    def _paasid(cls, v: str) -> str:
        if not _PAASID.fullmatch(v):
            raise ValueError("must be 1 to 128 printable ASCII characters without spaces")
        return v

    @field_validator("items")
    @classmethod
    def _items(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            if not _CODE.fullmatch(p):
                raise ValueError(f"not an item code or PREFIX* pattern: {p!r}")
        return v

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            if not _REGION.fullmatch(p):
                raise ValueError(f"not a region code prefix (1 to 12 digits, or *): {p!r}")
        return v


class Forbidden(InputError):
    """The authenticated caller may not do this (403); names the caller and what it lacks."""

    status = 403
    title = "Forbidden"
    type_ = "urn:gateway:problem:forbidden"

    def __init__(self, detail: str, problems: list[FieldProblem] | None = None, *,
                 caller: str) -> None:
        self.caller = caller
        super().__init__(detail, problems)

    def problem(self) -> dict[str, Any]:
        return {**super().problem(), "caller": self.caller}


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request (``request["caller"]``)."""

    name: str
    permissions: frozenset[str]
    items: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    identity: Literal["full", "masked"] = "masked"
    #: ``x-tif`` when its signature was verified; ``local`` when ``server.auth`` is ``off``
    via: str = "x-tif"
    paasid: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, name: str, s: CallerSettings) -> Caller:
        return cls(name=name, permissions=frozenset(s.permissions), items=s.items,
                   regions=s.regions, identity=s.identity, paasid=s.paasid)

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def reads(self, submitted_by: str | None) -> bool:
        """Whether it may read a case ``submitted_by`` that caller: its own, or any with
        ``read_any``."""
        return self.may("read_any") or (self.may("read") and submitted_by == self.name)

    def require(self, permission: str) -> None:
        if not self.may(permission):
            raise Forbidden(f"caller {self.name!r} does not have the permission {permission!r}",
                            caller=self.name)

    def check_case(self, case: Mapping[str, Any]) -> None:
        """Refuse a case with an item or region this caller may not submit (:class:`Forbidden`
        naming every refused field pointer)."""
        problems: list[FieldProblem] = []
        for i, item in enumerate(case.get("items") or ()):
            if not isinstance(item, Mapping):
                continue
            codes = [item.get("basicCode"), item.get("implementationCode")]
            if not any(isinstance(c, str) and _matches_code(self.items, c) for c in codes):
                problems.append(FieldProblem(
                    f"/items/{i}/basicCode",
                    f"caller {self.name!r} may not submit this item (neither its basicCode nor "
                    f"its implementationCode is among its allowed items)"))
            regions = [("handlingRegion", item.get("handlingRegion"))] + [
                (f"jointRegions/{j}", r) for j, r in enumerate(item.get("jointRegions") or ())]
            for where, region in regions:
                if isinstance(region, str) and not _matches_region(self.regions, region):
                    problems.append(FieldProblem(
                        f"/items/{i}/{where}",
                        f"caller {self.name!r} may not submit items for region {region}"))
        if problems:
            raise Forbidden(f"caller {self.name!r} may not submit this case: "
                            + "; ".join(f"{p.path}: {p.message}" for p in problems[:3])
                            + (f"; and {len(problems) - 3} more" if len(problems) > 3 else ""),
                            problems, caller=self.name)


def _matches_code(patterns: tuple[str, ...], code: str) -> bool:
    return any(p == "*" or (code.startswith(p[:-1]) if p.endswith("*") else code == p)
               for p in patterns)


def _matches_region(prefixes: tuple[str, ...], region: str) -> bool:
    return any(p == "*" or region.startswith(p) for p in prefixes)


#: The caller of every request when ``server.auth`` is ``off`` (loopback only): the operator on
#: this host may submit and read everything, in full. The admin API then keeps its bearer token
#: (``server.admin_token``), as before callers existed.
LOCAL = Caller(name="local", permissions=frozenset({"submit", "read", "read_any"}),
               items=("*",), regions=("*",), identity="full", via="local")


class Callers:
    """The configured callers by paasid, and their tokens for :func:`gateway.protocols.tif.verify`."""

    def __init__(self, settings: Mapping[str, CallerSettings]) -> None:
        self._by_paasid = {s.paasid: Caller.from_settings(name, s) for name, s in settings.items()}
        self.tokens: dict[str, str] = {s.paasid: s.token for s in settings.values()}

    def by_paasid(self, paasid: str) -> Caller | None:
        return self._by_paasid.get(paasid)


__all__ = ["ADMIN_ROUTES", "CASE_ROUTES", "LOCAL", "Caller", "CallerSettings", "Callers",
           "Forbidden", "Permission"]
