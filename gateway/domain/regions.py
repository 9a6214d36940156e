"""GB/T 2260 region codes: the 6-digit form callers send, the 12-digit form the gateway stores.

A 12-digit platform code is five levels laid end to end::

    11 01 05 001 000
    │  │  │  │   └─ village (12)
    │  │  │  └───── township (9)
    │  │  └──────── county / district (6)
    │  └─────────── city (4)
    └────────────── province (2)

Trailing zeros at a level boundary mean "the whole of the level above": ``110000`` is all of
Beijing, ``130100`` all of Shijiazhuang, ``110105000000`` all of Chaoyang. Routing therefore
compares *significant prefixes* (``110000`` → ``11``), so that a rule written either as ``"11"``
or as ``"110000"`` means the same thing and a longer prefix is always a smaller area.

Everything here is pure and raises ``ValueError``; callers translate that into their own error
(``ConfigError`` for a route table, a field problem for a case).

Which codes exist is data: ``gb2260.tsv`` beside this file (its header names the sources and the
edition). :func:`region_problem` says in words why a code a case names is not a region; the
shape checks (:func:`is_valid_region`, :func:`normalise`) stay purely syntactic, because route
tables name prefixes and the national platform's own codes pass through them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

GB2260_FILE = Path(__file__).with_name("gb2260.tsv")

#: Lengths at which a level ends; a significant prefix always has one of these lengths.
LEVEL_LENGTHS: tuple[int, ...] = (2, 4, 6, 9, 12)
LEVEL_NAMES: dict[int, str] = {2: "province", 4: "city", 6: "district", 9: "township",
                               12: "village"}

_CODE_RE = re.compile(r"^[1-8]\d{5}(\d{6})?$")
_PREFIX_RE = re.compile(r"^[1-8]\d*$")


def is_valid_region(code: str) -> bool:
    """True for a 6- or 12-digit code whose first digit names a region group (1-8)."""
    return isinstance(code, str) and bool(_CODE_RE.match(code))


@cache
def _gb2260() -> tuple[dict[str, str], frozenset[str]]:
    """(current code → name, every code used since 1980), read once from ``gb2260.tsv``."""
    current: dict[str, str] = {}
    ever: set[str] = set()
    with GB2260_FILE.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            code, status, name = line.rstrip("\n").split("\t")
            ever.add(code)
            if status == "current":
                current[code] = name
    return current, frozenset(ever)


def region_name(code: str) -> str | None:
    """The name of a current 6-digit division (``110105`` → 朝阳区), else None."""
    return _gb2260()[0].get(code)


def is_known_region(code: str) -> bool:
    """A 6- or 12-digit code whose county-level part is a current GB/T 2260 division."""
    return region_problem(code) is None


def was_ever_region(code6: str) -> bool:
    """True for a 6-digit code used in any edition since 1980 (current or not): what the region
    prefix of an ID number or credit code is checked against (they keep the issuing office's
    code for life)."""
    return code6 in _gb2260()[1]


def region_problem(code: object) -> str | None:
    """Why ``code`` is not a region a case may name, in words; None when it is one.

    A 6-digit code must be a current division (province, prefecture or county level). A 12-digit
    code must have such a first six digits; its township (7-9) and village (10-12) digits are
    checked for shape only (the statistical list of 600,000 villages is not shipped): a village
    needs a township, and a province or prefecture code carries no town of its own unless the
    prefecture has no counties (东莞 441900, 中山 442000, 儋州 460400, 嘉峪关 620200)."""
    if not isinstance(code, str) or not _CODE_RE.match(code):
        return ("is not a region code: 6 digits (110105) or 12 digits (110105000000), "
                "the first 1-8")
    current, ever = _gb2260()
    head, tail = code[:6], code[6:]
    if head not in current:
        province = head[:2] + "0000"
        if province not in current:
            return (f"{head[:2]} is no province-level code (GB/T 2260: 11 Beijing, 12 Tianjin, "
                    "13 Hebei, … 65 Xinjiang, 71 Taiwan, 81 Hong Kong, 82 Macao)")
        if head in ever:
            return (f"{head} is no longer a division of {current[province]} (abolished or "
                    "renumbered; GB/T 2260, current edition)")
        prefecture = head[:4] + "00"
        within = current.get(prefecture) if head[4:] != "00" else None
        if within in ("市辖区", "县") or (within or "").endswith("直辖县级行政区划"):
            within = None
        return (f"{head} is not a division of {current[province]}"
                + (f" {within}" if within and prefecture != province else "")
                + " (GB/T 2260, current edition)")
    if tail and tail != "000000":
        if tail[:3] == "000":
            return f"{code} names a village ({tail[3:]}) without a township (digits 7-9 are 000)"
        if head.endswith("0000") or (head.endswith("00") and head not in _TOWNS_UNDER_CITY
                                     and _has_counties(head)):
            return (f"{code}: {current[head]} ({head}) is not a county-level division, so it "
                    "has no townships of its own; use the county's code")
    return None


# prefecture-level cities without counties: their townships sit directly under the city
_TOWNS_UNDER_CITY = frozenset({"441900", "442000", "460400", "620200"})


@cache
def _has_counties(prefecture: str) -> bool:
    current = _gb2260()[0]
    return any(c[:4] == prefecture[:4] and c != prefecture for c in current)


def normalise(code: str) -> str:
    """The 12-digit form of a 6- or 12-digit code (``110105`` → ``110105000000``)."""
    if not is_valid_region(code):
        raise ValueError(f"{code!r} is not a 6- or 12-digit region code")
    return code if len(code) == 12 else code + "000000"


def province_prefix(code: str) -> str:
    """The 2-digit province prefix that picks the default route (``120116`` → ``12``)."""
    return normalise(code)[:2]


def significant_prefix(code: str) -> str:
    """The shortest prefix that names the same area: trailing zero levels dropped.

    ``110000`` → ``11``, ``130100`` → ``1301``, ``110105000000`` → ``110105``.
    """
    full = normalise(code)
    for length in reversed(LEVEL_LENGTHS[:-1]):
        if full[length:].strip("0"):
            return full[: LEVEL_LENGTHS[LEVEL_LENGTHS.index(length) + 1]]
    return full[:2]


def region_pattern(value: str) -> str:
    """Read a region as written in configuration and return its significant prefix.

    Accepts a level prefix (2, 4, 6, 9 or 12 digits) or a full 6/12-digit code; full codes are
    reduced with ``significant_prefix`` so ``"110000"`` and ``"11"`` are the same pattern.
    """
    if not isinstance(value, str) or not _PREFIX_RE.match(value):
        raise ValueError(f"{value!r} is not a region code or prefix (digits, first digit 1-8)")
    if len(value) in (6, 12):
        return significant_prefix(value)
    if len(value) not in LEVEL_LENGTHS:
        raise ValueError(f"{value!r} has {len(value)} digits; a region prefix has 2, 4, 6, 9 "
                         "or 12 (province, city, district, township, village)")
    return value


def level_name(prefix: str) -> str:
    """``province``/``city``/``district``/``township``/``village`` for a significant prefix."""
    return LEVEL_NAMES.get(len(prefix), f"{len(prefix)}-digit prefix")


def in_region(code: str, pattern: str) -> bool:
    """True when the 6/12-digit ``code`` lies inside the area ``pattern`` (a significant prefix)."""
    return normalise(code).startswith(pattern)


def within(code: object, area: object) -> bool:
    """True when region ``code`` lies inside region ``area`` (both 6 or 12 digits); False for
    anything that is not a region code. A condition, never an error: the mappings' ``within``
    and a delivery's view both ask it of values a case supplies."""
    if not isinstance(code, str) or not isinstance(area, str):
        return False
    try:
        return normalise(code).startswith(significant_prefix(area))
    except ValueError:
        return False


def common_region(codes: Iterable[str]) -> str:
    """The smallest area containing every code, as a 12-digit code (zero-padded).

    Used to label one message that carries items for several districts of one partner.
    """
    prefixes = [significant_prefix(c) for c in codes]
    if not prefixes:
        raise ValueError("no region codes given")
    if len({p[:2] for p in prefixes}) != 1:
        raise ValueError("codes lie in different provinces")
    best = ""
    for length in LEVEL_LENGTHS:
        heads = {p[:length] for p in prefixes}
        if len(heads) != 1 or any(len(p) < length for p in prefixes):
            break
        best = heads.pop()
    return best.ljust(12, "0")
