"""The operators' and engineers' web console, served by the gateway under ``/console/``.

Server-side pages (Jinja2 templates in ``templates/``) with a little htmx (vendored in
``static/``, no CDN): case search and timelines, dead letters (replay, discard, bulk, each
audited with the operator's name), partners (breakers, in-flight, latency, failures) and the
mapping playground. Sign-in and roles: :mod:`gateway.console.auth`; the ``console:`` settings:
:mod:`gateway.security.console_access`; reads: :mod:`gateway.store.console_queries`.
"""

from __future__ import annotations

from gateway.console.routes import add_routes

__all__ = ["add_routes"]
