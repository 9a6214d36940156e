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
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Lengths at which a level ends; a significant prefix always has one of these lengths.
LEVEL_LENGTHS: tuple[int, ...] = (2, 4, 6, 9, 12)
LEVEL_NAMES: dict[int, str] = {2: "province", 4: "city", 6: "district", 9: "township",
                               12: "village"}

_CODE_RE = re.compile(r"^[1-8]\d{5}(\d{6})?$")
_PREFIX_RE = re.compile(r"^[1-8]\d*$")


def is_valid_region(code: str) -> bool:
    """True for a 6- or 12-digit code whose first digit names a region group (1-8)."""
    return isinstance(code, str) and bool(_CODE_RE.match(code))


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
