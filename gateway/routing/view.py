"""The case as one delivery sees it: the source document every outbound mapping reads.

A delivery carries some items of a case to one partner for one area (``region``, the smallest
area containing the routing units it carries; a delivery never spans provinces). Its view is the
stored case with

* only the delivery's items, and the materials that serve them (or serve every item);
* for a 多地联办 item (more than one distinct region in ``handlingRegion`` + ``jointRegions``):
  ``handlingRegion`` = the recipient's own handling region (the first of the item's regions, in
  case order, that lies inside the delivery's region), and ``jointRegions`` = every region that
  handles the item, 12 digits, deduplicated, the case's ``handlingRegion`` (the lead, 牵头地区)
  first. The mapping tells the recipient's own regions from its joint partners with the
  ``within`` condition against ``$deliveryRegion`` (the delivery's region, in the context);
* for any other item, ``jointRegions`` removed (a list naming only the item's own region is not
  a joint item).

The shape stays that of ``schemas/beijing/case.schema.json`` (so mappings are checked against
it); only the meaning of ``handlingRegion`` and ``jointRegions`` is per delivery. Routing
(:func:`gateway.routing.plan.group`) guarantees that a delivery's region contains no region of its
joint items that another delivery (or Beijing itself) handles, so "inside the delivery's region"
means exactly "handled by this recipient".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.domain.regions import normalise, significant_prefix


def item_regions(item: Mapping[str, Any]) -> list[str]:
    """Every region handling ``item``, 12 digits, deduplicated: ``handlingRegion`` first, then
    ``jointRegions`` in order. More than one means 多地联办. Raises ``ValueError`` for a code
    that is not a region (schema-valid cases never have one)."""
    out = [normalise(item["handlingRegion"])]
    for r in item.get("jointRegions") or ():
        n = normalise(r)
        if n not in out:
            out.append(n)
    return out


def within(code: Any, area: Any) -> bool:
    """True when region ``code`` lies inside region ``area`` (both 6 or 12 digits); False for
    anything that is not a region code (a condition, never an error)."""
    if not isinstance(code, str) or not isinstance(area, str):
        return False
    try:
        return normalise(code).startswith(significant_prefix(area))
    except ValueError:
        return False


def local_regions(item: Mapping[str, Any], region: str) -> list[str]:
    """The regions of ``item`` a delivery for ``region`` handles (case order)."""
    return [r for r in item_regions(item) if within(r, region)]


def delivery_view(case: Mapping[str, Any], item_nos: Iterable[str],
                  region: str | None = None) -> dict[str, Any]:
    """The source document for one delivery's mapping (see the module docstring).

    Without ``region`` (callers that predate per-delivery regions) a joint item keeps the case's
    ``handlingRegion``; ``jointRegions`` is still the full, normalised list.
    """
    wanted = set(item_nos)
    items = []
    for item in case["items"]:
        if item["itemNo"] not in wanted:
            continue
        regions = item_regions(item)
        out = dict(item)
        if len(regions) > 1:
            out["jointRegions"] = regions
            own = [r for r in regions if within(r, region)] if region else []
            out["handlingRegion"] = own[0] if own else regions[0]
        else:
            out.pop("jointRegions", None)
        items.append(out)
    materials = [m for m in case.get("materials") or []
                 if not m.get("itemNos") or wanted.intersection(m["itemNos"])]
    return {**case, "items": items, "materials": materials}


def delivery_context(region: str | None) -> dict[str, Any]:
    """Context keys a mapping of this delivery reads besides the standard ones."""
    return {"deliveryRegion": region}


__all__ = ["delivery_context", "delivery_view", "item_regions", "local_regions", "within"]
