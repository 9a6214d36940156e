"""Personal names as identity documents write them.

Names of several ethnic groups and transliterated foreign names are written with a middle dot
between their parts (阿依古丽·买买提). Resident ID cards and the population register use U+00B7
MIDDLE DOT; input methods and copied text bring look-alikes (Japanese keyboards U+30FB, bullets
U+2022, …). A partner comparing the name with its register, or searching for it, finds no match
for the look-alike, although a person reading the name sees none. So the gateway stores the
ID-card form and tells the sender what it changed (:func:`middle_dot_fixes`): the applicant is
the same person, the record is not silently different from what was sent.
"""

from __future__ import annotations

import unicodedata

MIDDLE_DOT = "\u00b7"

#: Characters used in place of U+00B7 in names. U+0387 GREEK ANO TELEIA is U+00B7 after NFC.
LOOKALIKES = frozenset({
    "\u30fb",  # KATAKANA MIDDLE DOT ・
    "\uff65",  # HALFWIDTH KATAKANA MIDDLE DOT ･
    "\u2022",  # BULLET •
    "\u2027",  # HYPHENATION POINT ‧
    "\u22c5",  # DOT OPERATOR ⋅
    "\u2219",  # BULLET OPERATOR ∙
    "\u0387",  # GREEK ANO TELEIA ·
    "\u2e31",  # WORD SEPARATOR MIDDLE DOT ⸱
    "\u16eb",  # RUNIC SINGLE PUNCTUATION ᛫
    "\u00b7",  # (itself: no change)
})


def normalise_middle_dots(name: str) -> tuple[str, list[str]]:
    """``name`` with every look-alike of the middle dot replaced by U+00B7, and the distinct
    characters replaced (``[]`` when nothing changed)."""
    if not any(c in LOOKALIKES for c in name):
        return name, []
    found: list[str] = []
    out = []
    for c in name:
        if c in LOOKALIKES and c != MIDDLE_DOT:
            if c not in found:
                found.append(c)
            c = MIDDLE_DOT
        out.append(c)
    return "".join(out), found


def describe_fix(replaced: list[str]) -> str:
    """What :func:`normalise_middle_dots` did, in words for the sender."""
    names = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '?')} ({c})" for c in replaced)
    return (f"{names} replaced by U+00B7 MIDDLE DOT (·), the separator ID cards and the "
            "population register use; stored and sent to partners that way")


__all__ = ["LOOKALIKES", "MIDDLE_DOT", "describe_fix", "normalise_middle_dots"]
