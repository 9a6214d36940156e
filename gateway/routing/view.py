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

from gateway.domain.regions import normalise, within


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


def local_regions(item: Mapping[str, Any], region: str) -> list[str]:
    """The regions of ``item`` a delivery for ``region`` handles (case order)."""
    return [r for r in item_regions(item) if within(r, region)]


class DeliveryView(dict[str, Any]):
    """The view as a plain ``dict`` (what mappings read), which also knows where each of its
    values sits in the case: :meth:`case_pointer` turns a JSON pointer into the view (where a
    mapping error is found) into the pointer of the same value in the case (what the sender
    must fix; the view drops other deliveries' items and materials, so indices differ)."""

    case: Mapping[str, Any]
    item_index: list[int]
    material_index: list[int]

    def case_pointer(self, pointer: str) -> str:
        parts = pointer.split("/")
        if len(parts) < 3 or parts[1] not in ("items", "materials") or not parts[2].isdigit():
            return pointer
        k = int(parts[2])
        index = self.item_index if parts[1] == "items" else self.material_index
        if k >= len(index):
            return pointer
        i = index[k]
        if parts[1] == "items" and len(parts) > 3 and parts[3] in ("handlingRegion",
                                                                    "jointRegions"):
            # rebuilt per delivery: find the case's own spelling of the same region
            found, value = _at(self, parts[1:])
            item = self.case["items"][i]
            if found and isinstance(value, str):
                candidates = [("handlingRegion", item.get("handlingRegion"))] + [
                    (f"jointRegions/{j}", r) for j, r in enumerate(item.get("jointRegions") or [])]
                for rel, code in candidates:
                    if _same_region(code, value):
                        return f"/items/{i}/{rel}"
        return "/".join(["", parts[1], str(i), *parts[3:]])


def _at(doc: Any, parts: list[str]) -> tuple[bool, Any]:
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            return False, None
    return True, cur


def _same_region(a: Any, b: Any) -> bool:
    try:
        return isinstance(a, str) and normalise(a) == normalise(b)
    except ValueError:
        return False


def delivery_view(case: Mapping[str, Any], item_nos: Iterable[str],
                  region: str | None = None) -> DeliveryView:
    """The source document for one delivery's mapping (see the module docstring): a
    :class:`DeliveryView`, i.e. a ``dict`` that can map its pointers back to the case's.

    Without ``region`` (callers that predate per-delivery regions) a joint item keeps the case's
    ``handlingRegion``; ``jointRegions`` is still the full, normalised list.
    """
    wanted = set(item_nos)
    items = []
    item_index: list[int] = []
    for i, item in enumerate(case["items"]):
        if item["itemNo"] not in wanted:
            continue
        item_index.append(i)
        regions = item_regions(item)
        out = dict(item)
        if len(regions) > 1:
            out["jointRegions"] = regions
            own = [r for r in regions if within(r, region)] if region else []
            out["handlingRegion"] = own[0] if own else regions[0]
        else:
            out.pop("jointRegions", None)
        items.append(out)
    material_index = [i for i, m in enumerate(case.get("materials") or [])
                      if not m.get("itemNos") or wanted.intersection(m["itemNos"])]
    materials = [case["materials"][i] for i in material_index]
    view = DeliveryView({**case, "items": items, "materials": materials})
    view.case, view.item_index, view.material_index = case, item_index, material_index
    return view


__all__ = ["DeliveryView", "delivery_view", "item_regions", "local_regions",
           "within"]
