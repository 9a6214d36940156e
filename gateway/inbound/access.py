"""Who may submit what (``partners.<name>.inbound.submit``): deny by default.

A partner may submit a case when EVERY item's basic or implementation code is listed in
``items`` (exact, or ``"PREFIX*"``) and its handling region lies inside one of ``regions``
(region prefixes, as the routes write them; ``"*"`` is any). A partner without the block submits nothing. The
refusal names the item's field in Beijing's format and the partner, never the applicant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config import SubmitAccess
from gateway.domain.regions import in_region, region_pattern
from gateway.errors import ConfigError, FieldProblem


def _code_allowed(code: object, patterns: tuple[str, ...]) -> bool:
    if not isinstance(code, str) or not code:
        return False
    return any(code == p or (p.endswith("*") and code.startswith(p[:-1])) for p in patterns)


@dataclass(frozen=True)
class Access:
    """One partner's list, read at start-up (a region that is not a prefix is a ConfigError)."""

    partner: str
    items: tuple[str, ...]
    regions: tuple[str, ...]

    @classmethod
    def of(cls, partner: str, submit: SubmitAccess | None) -> Access:
        if submit is None:
            return cls(partner, (), ())
        try:
            regions = tuple("" if r == "*" else region_pattern(r) for r in submit.regions)
        except ValueError as e:
            raise ConfigError(str(e), key=f"partners.{partner}.inbound.submit.regions") from None
        return cls(partner, tuple(submit.items), regions)

    def refusal(self, case: dict[str, Any]) -> FieldProblem | None:
        """The first item this partner may not submit (its field named), or None."""
        for n, item in enumerate(case.get("items") or ()):
            codes = (item.get("basicCode"), item.get("implementationCode"))
            if not any(_code_allowed(c, self.items) for c in codes):
                shown = item.get("implementationCode") or item.get("basicCode") or "(none)"
                return FieldProblem(f"/items/{n}/implementationCode",
                                    f"item {shown} is not one {self.partner} may submit to "
                                    f"Beijing (partners.{self.partner}.inbound.submit.items)")
            region = item.get("handlingRegion")
            if not isinstance(region, str) or \
                    not any(in_region(region, r) for r in self.regions):
                return FieldProblem(f"/items/{n}/handlingRegion",
                                    f"region {region} is not one {self.partner} may submit to "
                                    f"(partners.{self.partner}.inbound.submit.regions)")
        return None
