"""What routing decides for one case: value objects only, no logic beyond grouping.

``Assignment`` is one routing unit (an item, or one region of a 多地联办 item) and the rule that
took it; ``PlannedDelivery`` is one message to one partner; ``RoutingPlan`` is the whole answer
that intake stores in the same transaction as the case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.config import PartnerSettings
from gateway.domain.regions import common_region, significant_prefix
from gateway.routing.rules import HOME


@dataclass(frozen=True)
class Assignment:
    """One (item, region) unit and where it goes. ``pointer`` is the JSON path of its region."""

    item_no: str
    item_index: int
    region: str
    pointer: str
    rule: str
    target: str
    mapping: str | None
    mapping_version: str | None
    joint: bool = False


@dataclass(frozen=True)
class PlannedDelivery:
    """One message to one partner.

    ``key`` is stable for the same case (partner, target region and the sorted item numbers), so
    the idempotency key derived from it survives a replayed submission.
    """

    partner: str
    item_nos: tuple[str, ...]
    mapping: str
    mapping_version: str | None
    rule: str
    region: str
    key: str
    joint: bool = False


@dataclass(frozen=True)
class RoutingPlan:
    deliveries: list[PlannedDelivery]
    home_items: list[str]
    assignments: tuple[Assignment, ...] = ()

    def deliveries_for(self, item_no: str) -> list[PlannedDelivery]:
        """Every delivery carrying ``item_no``: a 多地联办 item is done only when all are."""
        return [d for d in self.deliveries if item_no in d.item_nos]


def _natural(item_no: str) -> tuple[int, int | str]:
    return (0, int(item_no)) if item_no.isdigit() else (1, item_no)


def delivery_key(partner: str, region: str, item_nos: Sequence[str]) -> str:
    return f"{partner}:{region}:{'+'.join(sorted(item_nos, key=_natural))}"


def group(assignments: Sequence[Assignment],
          partners: Mapping[str, PartnerSettings]) -> RoutingPlan:
    """Fan out: one delivery per partner message, in the order items appear in the case.

    With ``items_per_message: many`` the units for one partner, mapping and province travel
    together (a message never spans provinces, so its target region is well defined). With
    ``one`` every item is its own delivery per province. Either way a 多地联办 item reaches a
    partner's province ONCE: its regions there (two districts of one province) are one unit of
    that delivery, which names them all (see :mod:`gateway.routing.view`).

    A delivery's region must not contain a region of one of its joint items that some other
    delivery (or Beijing itself) handles, since the delivery view reads "inside the delivery's
    region" as "handled by this recipient"; a group that would is split by region.
    """
    home_items: list[str] = []
    buckets: dict[tuple[str, ...], list[Assignment]] = {}
    for a in assignments:
        if a.target == HOME:
            if a.item_no not in home_items:
                home_items.append(a.item_no)
            continue
        assert a.mapping is not None
        base = (a.target, a.mapping, a.mapping_version or "")
        if partners[a.target].items_per_message == "many":
            buckets.setdefault((*base, a.region[:2]), []).append(a)
        else:
            buckets.setdefault((*base, a.item_no, a.region[:2]), []).append(a)
    groups: list[list[Assignment]] = []
    for units in buckets.values():
        if _overreaches(units, assignments):
            by_region: dict[str, list[Assignment]] = {}
            for u in units:
                by_region.setdefault(u.region, []).append(u)
            groups.extend(by_region.values())
        else:
            groups.append(units)
    deliveries = []
    for units in groups:
        first = units[0]
        region = common_region([u.region for u in units])
        item_nos = tuple(dict.fromkeys(u.item_no for u in units))
        rules = "+".join(dict.fromkeys(u.rule for u in units))
        assert first.mapping is not None
        deliveries.append(PlannedDelivery(
            partner=first.target, item_nos=item_nos, mapping=first.mapping,
            mapping_version=first.mapping_version, rule=rules, region=region,
            key=delivery_key(first.target, region, item_nos),
            joint=any(u.joint for u in units)))
    return RoutingPlan(deliveries=deliveries, home_items=home_items,
                       assignments=tuple(assignments))


def _overreaches(units: Sequence[Assignment], everything: Sequence[Assignment]) -> bool:
    """Would one delivery of ``units`` cover a region of one of its joint items that is handled
    elsewhere (another partner, mapping, or home)?"""
    joint = {u.item_no for u in units if u.joint}
    if not joint:
        return False
    area = significant_prefix(common_region([u.region for u in units]))
    mine = {(u.item_no, u.region) for u in units}
    return any(a.item_no in joint and (a.item_no, a.region) not in mine
               and a.region.startswith(area) for a in everything)
