"""Routing: which partner, mapping and mapping version handle each item of a case.

Public surface (checked by tests/test_routing.py)::

    table = RouteTable.build(settings.routes, settings.partners, settings.home_region,
                             source=settings.source_file)      # ConfigError at load
    plan = table.plan(case)            # RoutingPlan; NoRouteError (422) naming items and rules
    table.explain(case).render()       # per item: rules tried, verdicts, choice and why
    delivery_view(case, d.item_nos, d.region)   # what one delivery's mapping reads (view.py)

The rule format and the specificity order are described in README.md in this package.
"""

from gateway.routing.explain import Explanation, RuleVerdict, UnitExplanation
from gateway.routing.plan import Assignment, PlannedDelivery, RoutingPlan
from gateway.routing.rules import DIMENSION_KEYS, HOME, Rule
from gateway.routing.table import BUILTIN_HOME, RouteTable
from gateway.routing.view import delivery_view, item_regions, within

__all__ = [
    "BUILTIN_HOME",
    "DIMENSION_KEYS",
    "HOME",
    "Assignment",
    "Explanation",
    "PlannedDelivery",
    "RouteTable",
    "RoutingPlan",
    "Rule",
    "RuleVerdict",
    "UnitExplanation",
    "delivery_view",
    "item_regions",
    "within",
]
