"""The console's routes under ``/console/``, and signing in and out.

Signing in by password checks the name and password (:class:`gateway.console.auth.PasswordCheck`)
and sets the signed session cookie; each sign-in, and each refusal, is logged with the account's
name only (never a password, nor a name that is no account's: it may be a mistyped password),
and a sign-in is kept in ``operator_actions`` and the audit log.
The sign-in form itself carries no CSRF token (there is no session yet); its cookie is
``SameSite=Strict`` and it answers only to a POST from the console's own page (``Origin`` or
``Referer`` naming this host, when the browser sends one), so a foreign page cannot sign a
visitor in as someone else.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.api.keys import STORE
from gateway.console import auth, cases, i18n, operations, playground
from gateway.console.web import (SESSION, STATIC, current_session, render, settings_of,
                                 unavailable)
from gateway.errors import StoreError
from gateway.store.dlq import DeadLetters

log = logging.getLogger("gateway.console")


def see_other(location: str) -> web.Response:
    """A 303 redirect as a response (so cookies can be set on it)."""
    return web.Response(status=303, headers={"Location": location})


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/console/cases")


async def login_page(request: web.Request) -> web.StreamResponse:
    if not settings_of(request).enabled:
        raise web.HTTPNotFound()
    session, _ = current_session(request)
    if session is not None:
        raise web.HTTPSeeOther("/console/cases")
    s = settings_of(request)
    return render(request, "login.html", {"error": None, "user": "",
                                          "accounts": bool(s.users or s.sso)})


def _same_origin(request: web.Request) -> bool:
    for header in ("Origin", "Referer"):
        value = request.headers.get(header)
        if value:
            return urlsplit(value).netloc == request.host
    return True  # a browser that sends neither (privacy settings): SameSite still applies


async def login(request: web.Request) -> web.StreamResponse:
    settings = settings_of(request)
    if not settings.enabled:
        raise web.HTTPNotFound()
    form = await request.post()
    user, password = form.get("user"), form.get("password")
    labels = i18n.labels(i18n.choose(request))
    if not isinstance(user, str) or not isinstance(password, str) or not _same_origin(request) \
            or not 1 <= len(user) <= 64 or not 1 <= len(password) <= 1024:
        return render(request, "login.html", {"error": labels["bad_login"], "user": "",
                                              "accounts": True}, status=400)
    now = time.time()
    role = await request.app[SESSION].check(settings, user, password, now)
    if role is None:
        # the name only when it is an account's: a password typed into the name field stays
        # out of the log
        known = user in settings.users
        log.info("console sign-in refused for %s", repr(user) if known else "an unknown name")
        return render(request, "login.html", {"error": labels["bad_login"], "user": user,
                                              "accounts": True}, status=401)
    session = auth.new_session(settings, user, role, "password", now)
    try:
        await DeadLetters(request.app[STORE]).record(
            actor=operations.actor(session), action="console_login", target=None,
            detail={"role": role})
    except StoreError as e:  # no sign-in goes unrecorded
        return unavailable(request, e)
    log.info("console sign-in: %s (%s)", user, role)
    response = see_other("/console/cases")
    auth.set_cookie(response, session, settings)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    session, _ = current_session(request)
    form = await request.post()
    token = form.get("csrf")
    if session is not None and not auth.csrf_ok(session, token if isinstance(token, str)
                                                else None):
        return render(request, "error.html", {"message": "CSRF: " + i18n.labels(
            i18n.choose(request))["csrf"]}, session=session, status=403)
    response = see_other("/console/login")
    auth.clear_cookie(response)
    return response


def add_routes(app: web.Application) -> None:
    app[SESSION] = auth.PasswordCheck()
    r: Any = app.router
    r.add_get("/console", index)
    r.add_get("/console/", index)
    r.add_get("/console/login", login_page)
    r.add_post("/console/login", login)
    r.add_post("/console/logout", logout)
    r.add_get("/console/cases", cases.search)
    r.add_post("/console/cases", cases.search)
    r.add_get("/console/cases/{case_id}", cases.timeline)
    r.add_get("/console/dead-letters", operations.dead_letters)
    r.add_get("/console/dead-letters/{delivery_id}", operations.dead_letter)
    r.add_post("/console/dead-letters/act", operations.act)
    r.add_get("/console/partners", operations.partners)
    r.add_get("/console/playground", playground.playground)
    r.add_post("/console/playground", playground.playground)
    r.add_static("/console/static/", STATIC, append_version=False)


__all__ = ["add_routes"]
