"""Region code helpers: a table of codes and what each helper says about them."""

from __future__ import annotations

import pytest

from gateway.domain.regions import (common_region, in_region, is_valid_region, level_name,
                                    normalise, province_prefix, region_pattern,
                                    significant_prefix)


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
