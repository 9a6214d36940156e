"""Check digits of Chinese identifiers, so fixtures and inbound data are verifiably well formed.

Resident identity numbers (GB 11643) end in an ISO 7064 MOD 11-2 check character; unified social
credit codes (GB 32100) end in a MOD 31 check character over their own 31-symbol alphabet.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

_ID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
_USCC_RE = re.compile(rf"^[{USCC_ALPHABET}]{{18}}$")


def resident_id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_valid_resident_id(value: str) -> bool:
    """True for an 18-character resident ID number whose MOD 11-2 check character matches."""
    if not _ID_RE.match(value):
        return False
    return resident_id_check_char(value[:17]) == value[17]


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(value: str) -> bool:
    """True for an 18-character unified social credit code whose MOD 31 check matches."""
    if not _USCC_RE.match(value):
        return False
    return uscc_check_char(value[:17]) == value[17]


def _region_prefix_problem(code6: str, what: str) -> str | None:
    from gateway.domain.regions import region_name, was_ever_region
    if was_ever_region(code6):
        return None
    province = region_name(code6[:2] + "0000")
    if province is None:
        return (f"its region prefix {code6} starts with {code6[:2]}, which is no province-level "
                f"code (GB/T 2260); {what}")
    return (f"its region prefix {code6} was never a division of {province} (GB/T 2260, any "
            f"edition since 1980); {what}")


def resident_id_problem(value: str, today: date | None = None) -> str | None:
    """What is wrong with a resident ID number (GB 11643), in words; None when nothing is.

    Checked in the order a person would look: length, characters, the case of ``X``, the region
    prefix (digits 1-6: a GB/T 2260 code of any edition since 1980, since a number keeps the
    code of the office that issued it), the birth date (digits 7-14: a real day, not in the
    future, not before 1900), and last the MOD 11-2 check character. The expected check
    character is not given away: a mismatch usually means a mistyped digit elsewhere, which
    "correcting" the last character would hide."""
    if len(value) != 18:
        return (f"has {len(value)} characters; a resident ID number has 18 (17 digits and a "
                "check character, 0-9 or X)")
    bad = next((i for i, c in enumerate(value[:17]) if c not in "0123456789"), None)
    if bad is not None:
        return f"character {bad + 1} is {value[bad]!r}; the first 17 characters are digits 0-9"
    last = value[17]
    if last == "x":
        return "ends in a lowercase 'x'; the check character X is written in capitals"
    if last not in "0123456789X":
        return f"ends in {last!r}; the check character is a digit 0-9 or X"
    if prob := _region_prefix_problem(value[:6], "a resident ID number begins with the code of "
                                                   "the region that issued it"):
        return prob
    y, m, d = value[6:10], value[10:12], value[12:14]
    try:
        born = date(int(y), int(m), int(d))
    except ValueError:
        return f"its birth date {y}-{m}-{d} (digits 7-14) is not a date"
    today = today or datetime.now(timezone(timedelta(hours=8))).date()
    if born > today:
        return f"its birth date {born.isoformat()} (digits 7-14) is in the future"
    if born.year < 1900:
        return f"its birth date {born.isoformat()} (digits 7-14) is before 1900"
    if resident_id_check_char(value[:17]) != last:
        return ("its check character does not match the other 17 digits (GB 11643, "
                "ISO 7064 MOD 11-2): a digit is probably mistyped")
    return None


def uscc_problem(value: str) -> str | None:
    """What is wrong with a unified social credit code (GB 32100), in words; None when
    nothing is: length, the 31-character alphabet (digits and capitals without I, O, S, V, Z),
    the region prefix (characters 3-8: a GB/T 2260 code of any edition, or 100000 for bodies
    registered nationally) and the MOD 31 check character (character 18)."""
    if len(value) != 18:
        return f"has {len(value)} characters; a unified social credit code has 18"
    for i, c in enumerate(value):
        if c in USCC_ALPHABET:
            continue
        if c.upper() in USCC_ALPHABET:
            return (f"character {i + 1} is a lowercase {c!r}; a unified social credit code is "
                    "written in capitals")
        return (f"character {i + 1} is {c!r}; a unified social credit code uses digits and the "
                "capitals A-Y without I, O, S, V, Z")
    if value[2:8] != "100000" and (prob := _region_prefix_problem(
            value[2:8], "characters 3-8 are the code of the registering region")):
        return prob
    if uscc_check_char(value[:17]) != value[17]:
        return ("its check character (the 18th) does not match the first 17 (GB 32100, "
                "MOD 31): a character is probably mistyped")
    return None
