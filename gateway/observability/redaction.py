"""Last line of defence: scrub personal data and credentials out of every log line.

Why: a log leaves the gateway (files, log shippers, support tickets) without the access control
the case store has. The gateway never logs a case body or a credential on purpose; this catches
what slips through anyway — an exception message quoting a value, a library's debug line, a
partner's error text echoing the request. Three nets, all precompiled because they run on every
line: values that look like an identity number, a USCC, a mobile number, an e-licence id or a
bearer token; values next to a secret-sounding key (``password=``, ``"authCode": ``,
``<wsse:Password>``); and the literal credentials of the configuration (:func:`add_secrets`).

UUIDs (delivery and case ids) are matched first and kept whole, and every pattern needs a
non-alphanumeric edge, so ids, hex digests and timestamps stay readable for correlation.
Personal *names* have no pattern: they are kept out of logs by not logging bodies at all (no
traceback locals, no SQL parameters — see :mod:`gateway.observability.logs`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

REDACTED = "[REDACTED]"
PLACEHOLDERS = {"id_number": "[REDACTED-ID]", "uscc": "[REDACTED-USCC]",
                "phone": "[REDACTED-PHONE]", "elicence": "[REDACTED-ELICENCE]",
                "bearer": "Bearer [REDACTED]", "secret": "[REDACTED-SECRET]"}

_KEY = r"(?:proxy-)?authorization|passw(?:or)?d|pwd|secret|auth[-_]?code|token|api[-_]?key"
_EDGE_L, _EDGE_R = r"(?<![0-9A-Za-z.])", r"(?![0-9A-Za-z])"
_USCC_CH = "[0-9A-HJ-NPQRTUWXY]"  # GB 32100: digits and capitals without I, O, S, V, Z

# One pass, alternatives tried left to right at each position; the leading (?=...) on each is a
# cheap first-character test (this runs on every log line). A UUID is consumed whole first.
_PATTERN = re.compile("|".join([
    (rf"(?P<uuid>(?=[0-9a-fA-F]){_EDGE_L}[0-9a-fA-F]{{8}}(?:-[0-9a-fA-F]{{4}}){{3}}"
     rf"-[0-9a-fA-F]{{12}}{_EDGE_R})"),
    rf"(?P<elicence>(?=1){_EDGE_L}1\.2\.156\.3005\.2(?:\.[0-9A-Za-z]+)+)",
    r"(?P<url>(?<=://)[^:/@\s]+:)[^@/\s]+(?=@)",
    # <wsse:Password ...>x</  <authCode>x</  and the same escaped inside an XML string
    (r"(?P<xml>(?:<|&lt;)(?:[\w.-]+:)?(?i:password|auth[-_]?code|(?:app)?secret|token)\b"
     r"[^<>&]*(?:>|&gt;))[^<&]*(?=<|&lt;)"),
    # key: value / key=value / "key": "value" (quotes kept, so a JSON line stays valid)
    (rf"(?P<kv>(?=[aApPsStT])(?i:{_KEY})\\?[\"']?\s*[:=]\s*)(?P<q>\\?[\"'])?"
     r"(?(q)[^\"'\\\n]*|(?:(?i:bearer|basic|digest)\s+)?[^\s\"'\\&,;<>{}\[\]]+)"),
    r"(?P<bearer>(?=[bB])\b(?i:bearer)\s+)[^\s\"'\\,;<>]+",
    rf"(?P<id_number>(?=[1-9]){_EDGE_L}[1-9][0-9]{{16}}[0-9Xx]{_EDGE_R})",
    rf"(?P<uscc>(?={_USCC_CH}){_EDGE_L}{_USCC_CH}[0-9]{{7}}{_USCC_CH}{{10}}{_EDGE_R})",
    rf"(?P<phone>(?=[1+]){_EDGE_L}(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{{4}}){{2}}{_EDGE_R})",
]))

# What every pattern above needs somewhere in the text: seven digits (with at most one space
# or dash: identity number, USCC, phone, e-licence), one of the words, or a URL with an "@". A
# line without any of them skips the full scan (~0.5 µs per character; the test ~5 µs a line).
_HINT = re.compile(r"[0-9]{4}[- ]?[0-9]{3}")
_HINT_WORDS = ("auth", "passw", "pwd", "secret", "token", "apikey", "api_key", "api-key",
               "bearer", "&lt;", "1.2.156.3005")


def _suspect(text: str) -> bool:
    if _HINT.search(text) is not None:
        return True
    low = text.lower()
    for word in _HINT_WORDS:
        if word in low:
            return True
    return "://" in text and "@" in text


# keys whose whole value is dropped, whatever it holds (compared lower-case, without - and _)
SECRET_KEYS = frozenset({
    "authorization", "proxyauthorization", "cookie", "password", "passwd", "pwd", "secret",
    "appsecret", "clientsecret", "authcode", "token", "admintoken", "accesstoken", "apikey",
    "credentials", "certno", "holdercertno", "idnumber", "idcard", "phone", "mobile",
    "applicant", "formdata", "casebody", "payload"})

_secrets: re.Pattern[str] | None = None
_secret_values: set[str] = set()


def _sub(m: re.Match[str]) -> str:
    kind = m.lastgroup
    if kind == "uuid":
        return m.group()
    if kind == "url":
        return m.group(kind) + "***"
    if kind in ("xml", "kv", "q"):  # "q": the kv alternative's opening quote was last
        return (m.group("xml") or m.group("kv") + (m.group("q") or "")) + REDACTED
    return PLACEHOLDERS[kind]  # type: ignore[index]


def scrub(text: str) -> str:
    """``text`` with every configured secret and every pattern match replaced."""
    if _secrets is not None:
        text = _secrets.sub(PLACEHOLDERS["secret"], text)
    return _PATTERN.sub(_sub, text) if _suspect(text) else text


def add_secrets(values: Iterable[str | None]) -> None:
    """Redact these literal strings from now on (configured credentials, the admin token).
    Values shorter than 6 characters are ignored: they would blank out ordinary words."""
    global _secrets
    _secret_values.update(v for v in values if v and len(v) >= 6)
    if _secret_values:
        alts = sorted(_secret_values, key=len, reverse=True)
        _secrets = re.compile("|".join(re.escape(v) for v in alts))


def clear_secrets() -> None:
    global _secrets
    _secret_values.clear()
    _secrets = None


_PLAIN = (bool, float, type(None))
_OWN_KEYS = frozenset({"timestamp", "level", "logger"})  # written by our own processors


def _value(v: Any) -> Any:
    if isinstance(v, str):
        return scrub(v) if len(v) >= 6 else v
    if isinstance(v, _PLAIN):
        return v
    if isinstance(v, int):  # an identity or phone number logged as a number
        return v if abs(v) < 10**10 or scrub(str(v)) == str(v) else scrub(str(v))
    if isinstance(v, Mapping):
        return {k: (REDACTED if _secret_key(k) else _value(x)) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_value(x) for x in v]
    return scrub(repr(v))  # any other object: its repr is what a renderer would print


def _secret_key(key: Any) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in SECRET_KEYS


def redact_event(_logger: Any, _name: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: scrub the message and every value (recursively; objects by their
    repr), the formatted ``exception`` included, and drop the values of secret keys. Must run
    after ``format_exc_info`` and after any processor that adds content."""
    for key, v in event_dict.items():
        if key.startswith("_") or key in _OWN_KEYS:  # ProcessorFormatter's meta; our own fields
            continue
        event_dict[key] = REDACTED if _secret_key(key) else _value(v)
    return event_dict
