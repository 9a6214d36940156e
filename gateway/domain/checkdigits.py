"""Check digits of Chinese identifiers, so fixtures and inbound data are verifiably well formed.

Resident identity numbers (GB 11643) end in an ISO 7064 MOD 11-2 check character; unified social
credit codes (GB 32100) end in a MOD 31 check character over their own 31-symbol alphabet.
"""

from __future__ import annotations

import re

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
