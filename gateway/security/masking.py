"""Identity numbers and phone numbers of natural persons, masked for callers who need less.

A caller whose ``identity`` is ``masked`` (gateway/security/callers.py) reads every case with
these values masked, wherever in the answer they appear (the case body, an electronic licence id
that embeds the holder's ID number, a partner's message that echoes it):

* an ID number of a natural person (any certificate type but ``001``: resident ID, officer ID,
  passport, permits) is personal data: ``110105199003071239`` → ``110105********1239`` (first
  6, last 4: region and check digits stay recognisable for support calls); a number shorter than
  15 characters keeps its first and last character only;
* a unified social credit code (``certType``/``holderType`` ``001``) names an organisation and is
  public (the national enterprise credit registry shows it): shown in full;
* a phone number keeps its first 3 and last 4 digits (``138****0001``); a short one its last 2.

The command line (``gateway case show``) is run by an operator on the gateway's host, who can
read the database anyway: it shows values in full.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

USCC = "001"


def mask_id(value: str) -> str:
    """``110105********1239``: first 6 and last 4 kept (first and last 1 below 15 characters)."""
    head, tail = (6, 4) if len(value) >= 15 else (1, 1)
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


def mask_phone(value: str) -> str:
    """``138****0001``: first 3 and last 4 kept (last 2 below 9 characters)."""
    head, tail = (3, 4) if len(value) >= 9 else (0, 2)
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


def _people(case: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every object of the case that carries a certificate or a phone (applicant, agent, legal
    representative)."""
    for key in ("applicant", "agent"):
        who = case.get(key)
        if isinstance(who, Mapping):
            yield who
            rep = who.get("legalRepresentative")
            if isinstance(rep, Mapping):
                yield rep


def sensitive_values(case: Mapping[str, Any]) -> dict[str, str]:
    """The case's personal numbers, each with its mask (longest first, so a number inside
    another is replaced after it)."""
    out: dict[str, str] = {}
    for who in _people(case):
        cert, ctype, phone = who.get("certNo"), who.get("certType"), who.get("phone")
        if isinstance(cert, str) and cert and ctype != USCC:
            out[cert] = mask_id(cert)
        if isinstance(phone, str) and phone:
            out[phone] = mask_phone(phone)
    for lic in case.get("elicences") or ():
        if isinstance(lic, Mapping):
            cert = lic.get("holderCertNo")
            if isinstance(cert, str) and cert and lic.get("holderType") != USCC:
                out[cert] = mask_id(cert)
    return dict(sorted(out.items(), key=lambda kv: -len(kv[0])))


def mask_values(doc: Any, values: Mapping[str, str]) -> Any:
    """``doc`` (JSON-like) with every occurrence of each key of ``values`` in any string (and
    any key) replaced by its mask.

    Every answer to a masked caller goes through here (a case view is a few hundred values):
    plain dicts, lists and strings are told apart by their exact type, other mappings and
    sequences by the slower abstract checks."""
    if not values:
        return doc
    pairs = _present(doc, values)
    if not pairs:
        return doc

    def text(s: str) -> str:
        for plain, masked in pairs:
            if plain in s:
                s = s.replace(plain, masked)
        return s

    def walk(d: Any) -> Any:
        t = type(d)
        if t is str:
            return text(d)
        if t is dict:
            return {(text(k) if type(k) is str else walk(k)): walk(v) for k, v in d.items()}
        if t is list:
            return [walk(v) for v in d]
        if t is int or t is bool or t is float or d is None:
            return d
        if isinstance(d, str):
            return text(d)
        if isinstance(d, Mapping):
            return {walk(k): walk(v) for k, v in d.items()}
        if isinstance(d, (list, tuple)):
            return [walk(v) for v in d]
        return d

    return walk(doc)


def _present(doc: Any, values: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The ``values`` that occur somewhere in ``doc`` (all of them when that cannot be told).

    Told from ``doc``'s JSON text, in one pass: JSON escapes character by character, so a string
    holding a value holds its escaped form in the text. A case view without the case's body
    usually holds none of them, and then is not walked at all."""
    try:
        text = orjson.dumps(doc)
        return tuple((plain, masked) for plain, masked in values.items()
                     if orjson.dumps(plain)[1:-1] in text)
    except TypeError:  # what orjson does not write (an integer beyond 64 bits): walk it all
        return tuple(values.items())


def mask_case(doc: Any, case_body: Mapping[str, Any]) -> Any:
    """``doc`` (a case view, or any answer about this case) with the case's personal numbers
    masked everywhere."""
    return mask_values(doc, sensitive_values(case_body))


__all__ = ["mask_case", "mask_id", "mask_phone", "mask_values", "sensitive_values"]
