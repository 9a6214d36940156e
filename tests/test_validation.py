"""Case validation: schema paths, domain checks, JSON syntax errors, and the 409 diff."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import InputError
from gateway.intake import body_hash, idempotency_key, normalise
from gateway.validation import CaseValidator, diff_paths, ecma_regex, parse_json

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


# -- hostile input (issue 9): refused with the pointer, never an exception ----------------------

def _refused(raw: bytes) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as e:
        parse_json(raw)
    assert e.value.status == 400
    return [(p.path, p.message) for p in e.value.problems]


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    [(path, msg)] = _refused(b"[" * 100_000 + b"]" * 100_000)
    assert path == "" and "deeper than 32" in msg
    # deep enough to pass json.loads, too deep for the gateway: the pointer of the limit
    [(path, msg)] = _refused(b'{"formData": ' + b'{"a": ' * 40 + b"1" + b"}" * 41)
    assert path == "/formData" + "/a" * 31 and "deeper than 32" in msg
    parse_json(b'{"formData": ' + b'{"a": ' * 30 + b"1" + b"}" * 31)  # within the limit


def test_huge_integers_are_refused_with_their_pointer() -> None:
    [(path, msg)] = _refused(b'{"formData": {"n": ' + b"9" * 5000 + b"}}")
    assert path == "/formData/n" and "send it as a string" in msg
    assert _refused(b'{"a": [1, -9007199254740992]}')[0][0] == "/a/1"
    assert parse_json(b'{"a": -9007199254740991, "b": 1.5e300}') == {
        "a": -9007199254740991, "b": 1.5e300}


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_refused(token: bytes) -> None:
    [(path, msg)] = _refused(b'{"formData": {"x": [0, ' + token + b"]}}")
    assert path == "/formData/x/1"
    assert ("NaN" in msg or "Infinity" in msg or "infinity" in msg)


def test_duplicate_keys_are_refused_with_the_pointer_of_the_key() -> None:
    problems = _refused(b'{"applicant": {"name": "a", "certNo": "1", "name": "b"}, "x~/": 1, "x~/": 2}')
    assert sorted(p for p, _ in problems) == ["/applicant/name", "/x~0~1"]
    assert all("more than once" in m for _, m in problems)


def test_lone_surrogates_are_refused_in_values_and_keys() -> None:
    problems = _refused(b'{"applicant": {"name": "\\ud800"}, "formData": {"\\udfff": 1}}')
    assert [p for p, _ in problems] == ["/applicant/name", "/formData/\udfff"]
    assert parse_json(b'{"n": "\\ud842\\udfb7"}') == {"n": "𠮷"}  # a proper pair is fine


def test_pattern_dollar_is_the_end_of_the_string_and_digits_are_ascii(
        samples: dict[str, Any]) -> None:
    no = "^[A-Za-z0-9-]{8,40}$"
    assert re.search(no, "BJ2026113000000001\n")  # Python's reading: what let the 2nd case in
    assert ecma_regex(no).search("BJ2026113000000001\n") is None
    assert ecma_regex(no).search("BJ2026113000000001")
    assert ecma_regex(r"^\d{4}[$]\$$").search("2026$$")  # '$' in a class or escaped is literal
    assert ecma_regex(r"^\d{4}$").search("２０２６") is None
    assert ecma_regex(r"^\d{4}$").search("٢٠٢٦") is None
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    case["applicationNo"] += "\n"
    assert [m for p, m in _paths(case) if p == "/applicationNo" and "does not match" in m]


@pytest.mark.parametrize("value, why", [
    ("2026-13-01T09:15:00+08:00", "month 13"),
    ("2026-11-30T09:15:00+99:99", "offset"),
    ("２０２６-11-30T09:15:00+08:00", "ASCII"),
    ("٢٠٢٦-11-30T09:15:00+08:00", "ASCII"),
    ("2026-11-30T09:15:00+08:00\n", "ASCII"),
    ("2026-02-30T09:15:00+08:00", "no day 30"),
    ("2025-02-29T09:15:00+08:00", "no day 29"),
    ("2026-11-30T24:00:00+08:00", "does not exist"),
    ("2026-11-30T09:15:60+08:00", "leap seconds"),
    ("0001-01-01T00:00:00+14:00", "representable"),
    ("2026-11-30 09:15:00+08:00", "ASCII"),
])
def test_submit_time_must_be_a_real_rfc3339_time(samples: dict[str, Any], value: str,
                                                 why: str) -> None:
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    case["submitTime"] = value
    found = [(p, m) for p, m in _paths(case) if p == "/submitTime"]
    assert found and any(why in m for _, m in found), found


def test_valid_times_and_dates_still_pass(samples: dict[str, Any]) -> None:
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    for t in ("2024-02-29T23:59:59.123456789Z", "2026-11-30T01:15:00-05:30"):
        case["submitTime"] = t
        assert _paths(case) == []
        normalise(case)  # and the stored form can be made
    case["elicences"][0]["validUntil"] = "2026-02-30"
    assert _paths(case) == [("/elicences/0/validUntil",
                             "'2026-02-30' is not a 'date': 2026-02 has no day 30")]


def test_control_characters_refused_except_line_breaks_in_free_text(
        samples: dict[str, Any]) -> None:
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    case["applicant"]["address"] = "北京市朝阳区\n示例路1号\t2单元"  # free text: allowed
    case["formData"] = {"remarks": "第一行\r\n第二行\t完"}
    assert _paths(case) == []
    case["applicant"]["name"] = "测试\x00甲"
    case["items"][0]["itemName"] = "养老\n保险"
    case["items"][0]["department"] = "中心\x85"           # C1 control (NEL)
    case["formData"] = {"remarks": "\x1b[31m", "a\nb": "x", "ok": "\uffff"}
    case["applicant"]["address"] = "北京\x0b"
    found = dict(_paths(case))
    assert found == {
        "/applicant/address": "contains U+000B at character 3, a control character XML "
                              "partners cannot carry",
        "/applicant/name": "contains U+0000 at character 3, a control character XML partners "
                           "cannot carry",
        "/formData/a\nb": "the key contains U+000A, a control character",
        "/formData/ok": "contains U+FFFF, a control character XML partners cannot carry",
        "/formData/remarks": "contains U+001B, a control character XML partners cannot carry",
        "/items/0/department": "contains U+0085 at character 3, a control character XML "
                               "partners cannot carry",
        "/items/0/itemName": "contains U+000A at character 3, a line break or tab, which this "
                             "field does not allow",
    }


def test_idempotency_key_refuses_an_unvalidated_application_number() -> None:
    for bad in ("BJ1\n", " BJ1", "BJ1 ", "ＢＪ1", ""):
        with pytest.raises(ValueError):
            idempotency_key(bad, "national|310115000000|1")


def test_problem_messages_are_bounded(samples: dict[str, Any]) -> None:
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    case["applicationNo"] = "x" * 100_000
    [(path, msg)] = _paths(case)
    assert path == "/applicationNo" and len(msg) <= 300


@pytest.mark.parametrize("doc, control_at", [
    (None, None), (7, None), ("a\x00", ""), ([], None), (["\x00"], "/0"), ({"\x00": 1}, "/\x00")])
def test_problems_of_any_json_value_are_listed_not_raised(doc: Any, control_at: str | None) -> None:
    problems = V.problems(doc)
    assert problems  # none of these is a case
    controls = [p.path for p in problems if "U+0000" in p.message]
    assert controls == ([] if control_at is None else [control_at])
