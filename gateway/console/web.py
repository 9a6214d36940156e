"""What every console page shares: the role guard, template rendering, form and query reading,
and the scrubbing of free text.

:func:`page` wraps a handler: it finds the session (cookie, or the SSO header from the trusted
proxy), sends a visitor without one to the sign-in page, answers 403 to a role too low, checks
the CSRF token of every POST, and renders with the security headers (a CSP allowing only the
console's own scripts and styles, no framing, no caching of pages holding case data).

Inputs are read leniently where a browser form sends them (an empty field is no filter) and
strictly otherwise: an unknown, repeated or malformed field is a 400 page naming it, never a
database error.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from gateway.api import params
from gateway.console import auth, i18n
from gateway.errors import StoreError
from gateway.security.console_access import ConsoleSettings
from gateway.security.masking import mask_id, mask_phone

log = logging.getLogger("gateway.console")
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
SESSION = web.AppKey("console_session_check", auth.PasswordCheck)
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          trim_blocks=True, lstrip_blocks=True)
HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; frame-ancestors 'none'; "
                                "form-action 'self'; base-uri 'none'"),
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
}
Handler = Callable[[web.Request, auth.Session], Awaitable[web.StreamResponse]]
#: ID numbers (15 or 18 characters) and mobile numbers inside free text a partner wrote
_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[0-9Xx]|\d{15})(?![0-9A-Za-z])")
_PHONE_LIKE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")


class FormError(Exception):
    """A field the operator gave is not acceptable: the page is shown again naming it."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name}: {why}")
        self.name, self.why = name, why


def scrub(text: Any) -> Any:
    """Free text (a partner's message) with anything shaped like an ID or mobile number
    masked: such text is not tied to one case body whose numbers could be named exactly."""
    if not isinstance(text, str):
        return text
    text = _ID_LIKE.sub(lambda m: mask_id(m[1]), text)
    return _PHONE_LIKE.sub(lambda m: mask_phone(m[1]), text)


def settings_of(request: web.Request) -> ConsoleSettings:
    from gateway.api.keys import SETTINGS
    return request.app[SETTINGS].console


def render(request: web.Request, template: str, context: Mapping[str, Any], *,
           session: auth.Session | None = None, status: int = 200) -> web.Response:
    lang = i18n.choose(request)
    text = _ENV.get_template(template).render(
        t=i18n.labels(lang), lang=lang, session=session, path=request.path,
        query=request.query_string, **context)
    response = web.Response(text=text, status=status, content_type="text/html",
                            headers=HEADERS)
    if request.query.get("lang") in i18n.LANGS:
        response.set_cookie(i18n.LANG_COOKIE, lang, path="/console/", samesite="Strict",
                            max_age=365 * 86400)
    return response


def current_session(request: web.Request) -> tuple[auth.Session | None, bool]:
    """``(session, fresh)``: fresh when it was just made from the SSO header (set its cookie)."""
    settings = settings_of(request)
    now = time.time()
    cookie = request.cookies.get(auth.COOKIE)
    if cookie and (s := auth.decode(cookie, settings, now)) is not None:
        return s, False
    if (who := auth.sso_user(request, settings)) is not None:
        return auth.new_session(settings, who[0], who[1], "sso", now), True
    return None, False


def page(role: str) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Guard a console handler: signed in, ``role`` or higher, CSRF on POST (module docstring)."""
    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not settings_of(request).enabled:
                raise web.HTTPNotFound()
            session, fresh = current_session(request)
            if session is None:
                if request.method != "GET":
                    return render(request, "error.html", {"message": i18n.labels(
                        i18n.choose(request))["sign_in_first"]}, status=401)
                raise web.HTTPSeeOther("/console/login")
            if not session.may(role):
                return render(request, "error.html", {"message": i18n.labels(
                    i18n.choose(request))["forbidden"]}, session=session, status=403)
            if request.method == "POST":
                form = await request.post()
                token = form.get("csrf")
                if not auth.csrf_ok(session, token if isinstance(token, str) else None):
                    return render(request, "error.html", {"message": "CSRF: " + i18n.labels(
                        i18n.choose(request))["csrf"]}, session=session, status=403)
            try:
                response = await handler(request, session)
            except StoreError as e:  # the database, not the request: say so, never a 500
                response = unavailable(request, e, session)
            except FormError as e:  # an htmx request swaps the message in, not a whole page
                response = render(request, "error_fragment.html" if request.headers.get(
                    "HX-Request") else "error.html", {"message": str(e), "field": e.name},
                    session=session, status=400)
            if fresh:
                auth.set_cookie(response, session, settings_of(request))
            return response
        return guarded
    return wrap


def unavailable(request: web.Request, e: StoreError,
                session: auth.Session | None = None) -> web.Response:
    """503: the database could not answer (the error's class only: see StoreError)."""
    log.warning("console %s: %s", request.path, e)
    response = render(request, "error.html", {"message": f"the database cannot answer now "
                      f"({e.operation}); try again shortly"}, session=session, status=503)
    response.headers["Retry-After"] = "5"
    return response


def fields(data: Mapping[str, Any], checks: Mapping[str, params.Check],
           allowed: frozenset[str] = frozenset()) -> dict[str, str]:
    """The non-empty fields of a query or form, each checked; unknown or repeated ones refused
    (``allowed``: names taken without a check, e.g. ``csrf``, ``lang``, ``page``)."""
    out: dict[str, str] = {}
    getall = getattr(data, "getall", None)
    for name in dict.fromkeys(data.keys()):
        if name in allowed:
            continue
        check = checks.get(name)
        if check is None:
            raise FormError(ascii(name)[:70], "unknown field")
        values = getall(name) if getall is not None else [data[name]]
        values = [v for v in values if not (isinstance(v, str) and v == "")]
        if not values:
            continue
        if len(values) > 1:
            raise FormError(name, "given more than once")
        if not isinstance(values[0], str):
            raise FormError(name, "must be text, not a file")
        if (why := check(values[0])) is not None:
            raise FormError(name, why)
        out[name] = values[0]
    return out


def choice(options: frozenset[str] | set[str]) -> params.Check:
    def check(value: str) -> str | None:
        return None if value in options else f"{ascii(value)[:40]} is not one of the choices"
    return check


def pattern(regex: str, what: str) -> params.Check:
    compiled = re.compile(regex)

    def check(value: str) -> str | None:
        return None if compiled.fullmatch(value) else f"{ascii(value)[:40]} is not {what}"
    return check


__all__ = ["FormError", "STATIC", "choice", "current_session", "fields", "page", "pattern",
           "render", "scrub", "settings_of"]
