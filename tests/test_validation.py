"""Case validation: schema paths, domain checks, JSON syntax errors, and the 409 diff."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import InputError
from gateway.intake import body_hash, idempotency_key, normalise
from gateway.validation import CaseValidator, diff_paths, parse_json

ROOT = Path(__file__).resolve().parent.parent
V = CaseValidator(ROOT / "schemas" / "beijing" / "case.schema.json")


def test_every_sample_is_valid(samples: dict[str, Any]) -> None:
    assert samples
    for name, case in samples.items():
        assert V.problems(case) == [], name


def _paths(case: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in V.problems(case)]


def test_domain_checks_name_the_field(samples: dict[str, Any]) -> None:
    case = copy.deepcopy(samples["02-company-bundle-beijing-guangdong"])
    case["items"][1]["itemNo"] = "1"
    case["materials"][1]["itemNos"] = ["7"]
    case["applicant"]["legalRepresentative"]["certNo"] = "120116198506112343"
    case["applicant"]["certNo"] = "91110105MA01AB125A"
    assert _paths(case) == [
        ("/applicant/certNo", "not a valid unified social credit code (GB 32100 check character)"),
        ("/applicant/legalRepresentative/certNo",
         "not a valid resident ID number (GB 11643 check digit)"),
        ("/items/1/itemNo", "duplicate itemNo '1' (also /items/0)"),
        ("/materials/1/itemNos/0", "no item with itemNo '7'"),
    ]


def test_legal_person_must_use_credit_code(samples: dict[str, Any]) -> None:
    case = copy.deepcopy(samples["02-company-bundle-beijing-guangdong"])
    case["applicant"]["certType"] = "111"
    case["applicant"]["certNo"] = "110105199003071239"
    assert _paths(case) == [("/applicant/certType",
                             "a legal person applies with its unified social credit code (001)")]


def test_unknown_field_is_named(samples: dict[str, Any]) -> None:
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    case["items"][0]["colour"] = "red"
    [(path, msg)] = _paths(case)
    assert path == "/items/0" and "'colour' was unexpected" in msg


def test_json_syntax_error_names_line_and_column() -> None:
    with pytest.raises(InputError, match="line 3 column 1"):
        parse_json(b'{\n "a": 1,\n}')
    with pytest.raises(InputError, match="not UTF-8"):
        parse_json('{"a": "北京"}'.encode("gbk"))


def test_normalise_stores_12_digit_regions_and_beijing_time(samples: dict[str, Any]) -> None:
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    case["submitTime"] = "2026-11-30T01:15:00Z"
    n = normalise(case)
    assert n["receivingRegion"] == "110105000000"
    assert n["items"][0]["handlingRegion"] == "310115000000"
    assert n["submitTime"] == "2026-11-30T09:15:00+08:00"
    # 6- and 12-digit spellings of the same case are the same case
    case12 = copy.deepcopy(case)
    case12["receivingRegion"] = "110105000000"
    assert body_hash(normalise(case12)) == body_hash(n)


def test_idempotency_key_is_stable_and_target_specific() -> None:
    a = idempotency_key("BJ1", "national|310115000000|1")
    assert a == idempotency_key("BJ1", "national|310115000000|1")
    assert a != idempotency_key("BJ1", "national|310115000000|2")
    assert a != idempotency_key("BJ2", "national|310115000000|1")
    assert a.startswith("BJGW-") and len(a) <= 64


def test_diff_paths() -> None:
    assert diff_paths({"a": 1, "b": [1, 2], "c": {"d": 1}},
                      {"a": 1, "b": [1, 3], "c": {"e": 1}}) == ["/b/1", "/c/d", "/c/e"]
    assert diff_paths([1], [1, 2]) == ["/"]
