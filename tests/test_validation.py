"""Case validation: schema paths, domain checks, JSON syntax errors, and the 409 diff."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.checkdigits import (resident_id_check_char, resident_id_problem,
                                        uscc_check_char, uscc_problem)
from gateway.errors import InputError
from gateway.intake.accept import body_hash, idempotency_key, normalise
from gateway.intake.validation import CaseValidator, SchemaValidator, diff_paths, parse_json
from gateway.schemacheck import (check_date, check_date_time, describe_pattern, ecma_regex,
                                 fast_validity)

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
        ("/applicant/certNo", "not a valid unified social credit code: its check character "
                              "(the 18th) does not match the first 17 (GB 32100, MOD 31): a "
                              "character is probably mistyped"),
        ("/applicant/legalRepresentative/certNo",
         "not a valid resident ID number: its check character does not match the other 17 "
         "digits (GB 11643, ISO 7064 MOD 11-2): a digit is probably mistyped"),
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
    assert path == "/items/0/colour" and msg.startswith("is not a field of this object (allowed: ")
    assert "basicCode" in msg


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
    assert ("/applicationNo", "must be 8 to 40 characters: letters A-Z or a-z, digits or '-'; "
                              "got 'BJ2026113000000001\\n'") in _paths(case)


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
                             "must be a date YYYY-MM-DD: 2026-02 has no day 30; got '2026-02-30'")]


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


# -- what the domain knows, in words (issue 10 §2) ------------------------------------------------



def _id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


@pytest.mark.parametrize("number, words", [
    ("11010519900307123", "has 17 characters; a resident ID number has 18"),
    ("1101051990030712391", "has 19 characters"),
    ("11010519900307123x", "ends in a lowercase 'x'; the check character X is written in capitals"),
    ("1101051990030712A9", "character 17 is 'A'; the first 17 characters are digits"),
    (_id("11010519931345123"), "its birth date 1993-13-45 (digits 7-14) is not a date"),
    (_id("11010520990101123"), "its birth date 2099-01-01 (digits 7-14) is in the future"),
    (_id("19010519900307123"), "its region prefix 190105 starts with 19, which is no "
                               "province-level code"),
    (_id("11019919900307123"), "its region prefix 110199 was never a division of 北京市"),
    ("110105199003071238", "its check character does not match the other 17 digits"),
])
def test_resident_id_problems_say_what_is_wrong(number: str, words: str) -> None:
    why = resident_id_problem(number)
    assert why is not None and words in why, why


def test_resident_ids_of_former_regions_and_the_fixtures_are_valid() -> None:
    for good in ("110105199003071239", "120116198506112342", "130102199202153450",
                 _id("12022519800101123"),       # 蓟县, abolished 2016: the number stays valid
                 _id("11022819700101123")):      # 密云县
        assert resident_id_problem(good) is None, good
    # the checks agree with the old yes/no check on every fixture
    assert resident_id_problem("11010519900307123X") is not None


def _uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


@pytest.mark.parametrize("code, words", [
    ("91110105MA01AB125", "has 17 characters; a unified social credit code has 18"),
    ("91110105ma01AB125M", "character 9 is a lowercase 'm'; a unified social credit code is "
                           "written in capitals"),
    ("91110105MA01AB12OM", "character 17 is 'O'; a unified social credit code uses digits and "
                           "the capitals A-Y without I, O, S, V, Z"),
    (_uscc("91190105MA01AB125"), "its region prefix 190105 starts with 19"),
    ("91110105MA01AB125N", "its check character (the 18th) does not match the first 17"),
])
def test_uscc_problems_say_what_is_wrong(code: str, words: str) -> None:
    why = uscc_problem(code)
    assert why is not None and words in why, why


def test_uscc_fixtures_and_national_bodies_are_valid() -> None:
    for good in ("91110105MA01AB125M", "11110000000012343B", "11110105000012343Q",
                 _uscc("11100000000013127")):   # 100000: registered nationally
        assert uscc_problem(good) is None, good


def test_a_well_checked_but_impossible_id_is_refused_at_its_field(samples: dict[str, Any]) -> None:
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    case["applicant"]["certNo"] = _id("11010519931345123")
    case["agent"] = {"name": "代办人", "certType": "111", "certNo": "11010519900307123x"}
    case["elicences"][0]["holderCertNo"] = "11010519900307123"
    assert _paths(case) == [
        ("/agent/certNo", "not a valid resident ID number: ends in a lowercase 'x'; the check "
                          "character X is written in capitals"),
        ("/applicant/certNo", "not a valid resident ID number: its birth date 1993-13-45 "
                              "(digits 7-14) is not a date"),
        ("/elicences/0/holderCertNo", "not a valid resident ID number: has 17 characters; a "
                                      "resident ID number has 18 (17 digits and a check "
                                      "character, 0-9 or X)"),
    ]


def test_unknown_region_codes_are_refused_naming_each_field(samples: dict[str, Any]) -> None:
    case = copy.deepcopy(samples["20-bundle-ten-items-jingjinji"])
    case["receivingRegion"] = "110199"
    case["items"][0]["handlingRegion"] = "190000"
    case["items"][9]["jointRegions"][1] = "131099000000"
    found = dict(_paths(case))
    assert found == {
        "/receivingRegion": "not a region code in use: 110199 is not a division of 北京市 "
                            "(GB/T 2260, current edition)",
        "/items/0/handlingRegion": "not a region code in use: 19 is no province-level code "
                                   "(GB/T 2260: 11 Beijing, 12 Tianjin, 13 Hebei, … 65 Xinjiang, "
                                   "71 Taiwan, 81 Hong Kong, 82 Macao)",
        "/items/9/jointRegions/1": "not a region code in use: 131099 is not a division of 河北省 "
                                   "廊坊市 (GB/T 2260, current edition)",
    }


def test_a_missing_field_is_named_itself_not_its_parent(samples: dict[str, Any]) -> None:
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    del case["items"][0]["itemName"]
    del case["applicant"]["certNo"]
    del case["submitTime"]
    assert _paths(case) == [
        ("/applicant/certNo", "is required but missing"),
        ("/items/0/itemName", "is required but missing"),
        ("/submitTime", "is required but missing (expected a date and time with its offset, "
                        "like 2026-11-30T09:15:00+08:00 (or …Z for UTC))"),
    ]


@pytest.mark.parametrize("blank", ["", " ", "   ", "\u3000", "\t", "\u00a0\u200b"])
def test_a_name_of_only_spaces_is_refused(samples: dict[str, Any], blank: str) -> None:
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    case["applicant"]["name"] = blank
    found = [m for p, m in _paths(case) if p == "/applicant/name"]
    assert found and found[0] in ("is blank: it holds only spaces", "must not be empty"), found


# every field with a pattern, a value breaking it: the message says what is expected in words
_BROKEN = {
    ("applicationNo",): "BJ 1", ("nationalCaseNo",): "X1", ("submitTime",): "yesterday",
    ("receivingRegion",): "北京", ("applicant", "phone"): "phone?",
    ("items", 0, "itemNo"): "#1", ("items", 0, "handlingRegion"): "0",
    ("materials", 0, "sha256"): "ABC", ("elicences", 0, "licenceId"): "1.2.3",
    ("elicences", 0, "typeCode"): "x", ("elicences", 0, "holderType"): "1111",
}


@pytest.mark.parametrize("where", list(_BROKEN), ids=lambda w: "/".join(map(str, w)))
def test_pattern_messages_are_words_not_regular_expressions(samples: dict[str, Any],
                                                            where: tuple[Any, ...]) -> None:
    case = copy.deepcopy(samples["01-person-shanghai-social-security"])
    case["nationalCaseNo"] = "11BJ20261130"
    case["materials"][0]["sha256"] = "0" * 64
    target: Any = case
    for part in where[:-1]:
        target = target[part]
    target[where[-1]] = _BROKEN[where]
    pointer = "/" + "/".join(map(str, where))
    found = [m for p, m in _paths(case) if p == pointer]
    assert found, _paths(case)
    for msg in found:
        assert msg.startswith("must be "), msg
        assert not re.search(r"\^|\$'|\[[^\]]*-[^\]]*\]|\{\d|\\\\[dw]", msg), msg
        assert f"got {_BROKEN[where]!r}" in msg


def test_every_pattern_in_the_case_schema_has_words() -> None:
    import json as _json
    schema = _json.loads((ROOT / "schemas" / "beijing" / "case.schema.json").read_text("utf-8"))
    missing: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "pattern" in node and "x-expected" not in node:
                missing.append(path)
            for k, v in node.items():
                walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}/{i}")
    walk(schema, "")
    assert missing == []


@pytest.mark.parametrize("pattern, words", [
    (r"[A-Za-z0-9._\-]{1,64}", "1 to 64 characters from A–Z, a–z, 0–9, '.', '_', '-'"),
    (r"[1-8][0-9]{11}", "a digit 1–8, then 11 digits"),
    (r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
     "the form nnnn-nn-nn nn:nn:nn (n: a digit)"),
    (r"^[0-9]{12}$", "12 digits"),
    (r"[0-9+\-]{5,20}", "5 to 20 characters from 0–9, '+', '-'"),
    (r"^1\.2\.156\.[0-9]+$", "'1.2.156.', then one or more digits"),
    (r"[^ ]+", "one or more characters other than ' '"),
    (r"(a|b)", "text of the form (a|b)"),                      # the last resort
])
def test_describe_pattern(pattern: str, words: str) -> None:
    assert describe_pattern(pattern) == words


# -- the compiled yes/no agrees with jsonschema (the fast path must never say yes wrongly) ---------


_SAMPLES = {p.stem: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((ROOT / "samples" / "cases").glob("*.json"))}
_tricky_text = st.one_of(
    st.sampled_from(["", " ", "\u3000", "110105", "110105000000", "190000", "BJ2026113000000001",
                     "BJ2026113000000001\n", "2026-11-30T09:15:00+08:00", "2026-02-30",
                     "2026-11-30T24:00:00Z", "１２３", "0" * 64, "WEB", "FAX", "111", "001",
                     "NATURAL_PERSON", "1.2.156.3005.2.x1y2", "a" * 201, "x" * 65]),
    st.text(max_size=12))
_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False,
              allow_infinity=False), _tricky_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_tricky_text, inner, max_size=3)), max_leaves=6)


def _mutate(doc: Any, data: st.DataObject) -> None:
    """Replace, delete or add one value somewhere in ``doc``."""
    node, parent, key = doc, None, None
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, data.draw(st.sampled_from(keys))
        node = node[key]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "add" and isinstance(node, dict):
        node[data.draw(_tricky_text)] = data.draw(_value)
    elif action == "add" and isinstance(node, list):
        node.append(data.draw(_value))
    elif action == "delete" and parent is not None:
        del parent[key]  # type: ignore[arg-type]
    elif parent is not None:
        parent[key] = data.draw(_value)  # type: ignore[index]


_CASE_SCHEMA = json.loads((ROOT / "schemas" / "beijing" / "case.schema.json").read_text("utf-8"))
_FORMATS = {"date": check_date, "date-time": check_date_time}
_CASE_FAST = fast_validity(_CASE_SCHEMA, _FORMATS)
_NATIONAL_SCHEMA = json.loads((ROOT / "schemas" / "national" / "case-submit.schema.json")
                              .read_text("utf-8"))
_NATIONAL_FAST = fast_validity(_NATIONAL_SCHEMA)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_validity_agrees_with_jsonschema_on_mutated_cases(data: st.DataObject) -> None:
    assert _CASE_FAST is not None
    doc = copy.deepcopy(_SAMPLES[data.draw(st.sampled_from(sorted(_SAMPLES)))])
    for _ in range(data.draw(st.integers(0, 3))):
        _mutate(doc, data)
    full = not list(V._v.iter_errors(doc))
    assert _CASE_FAST(doc) is full


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_validity_agrees_with_jsonschema_on_mutated_partner_messages(
        data: st.DataObject) -> None:
    from gateway.mapping import MappingRegistry
    global _NATIONAL_MAPPING
    if _NATIONAL_MAPPING is None:
        _NATIONAL_MAPPING = MappingRegistry.load(ROOT / "mappings", ROOT / "schemas").get(
            "national/case-submit")
    assert _NATIONAL_FAST is not None
    case = _SAMPLES[data.draw(st.sampled_from(["01-person-shanghai-social-security",
                                                "02-company-bundle-beijing-guangdong",
                                                "03-person-zhejiang-household"]))]
    out = copy.deepcopy(_NATIONAL_MAPPING.render(   # (the output shares values with the case)
        copy.deepcopy(case), {"caseId": "c", "deliveryId": "d", "idempotencyKey": "k",
                              "partner": "national", "now": "2026-12-01T10:00:00+08:00"}))
    for _ in range(data.draw(st.integers(0, 3))):
        _mutate(out, data)
    full = not list(SchemaValidator(_NATIONAL_SCHEMA).iter_errors(out))
    assert _NATIONAL_FAST(out) is full


_NATIONAL_MAPPING: Any = None


def test_fast_validity_declines_keywords_it_does_not_know() -> None:
    assert fast_validity({"type": "object", "dependentRequired": {"a": ["b"]}}) is None
    assert fast_validity({"items": [{"type": "string"}]}) is None
    assert fast_validity({"$ref": "http://example.com/s.json"}) is None


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**60, 2**60)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=30)


def _slow_parse(raw: bytes) -> tuple[str, Any]:
    """What parse_json said before its fast path: every container walked, always."""
    from gateway.intake import jsoninput
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=jsoninput._object,
                         parse_constant=jsoninput._constant)
    except ValueError:
        return "error", None
    problems = list(jsoninput._json_problems(doc, scalars=True))
    return ("error", None) if problems else ("ok", doc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json_values, st.booleans(), st.sampled_from(["", "\x00", "\t", "\n", "\x7f", "\x85",
                                                        "\ufffe", "\"", "\\", "\ud800"]),
       st.integers(0, 40), st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]))
def test_the_fast_path_says_what_the_full_walk_says(doc: Any, ascii_only: bool, extra: str,
                                                    depth: int,
                                                    separators: tuple[str, str]) -> None:
    """parse_json_text skips the walks only where they could find nothing: for any document
    (with an odd character put in a string, nested to any depth, escaped or raw UTF-8), it
    accepts and refuses what the full walk does, and says "plain" only when text_problems finds
    nothing, whatever it considers free text."""
    from gateway.intake.jsoninput import parse_json_text, text_problems
    wrapped = {"k": [doc, "a" + extra + "b"]}
    for _ in range(depth):
        wrapped = {"d": wrapped}
    text = json.dumps(wrapped, ensure_ascii=ascii_only, separators=separators)
    raw = text.encode("utf-8", "surrogatepass")
    expected, expected_doc = _slow_parse(raw)
    try:
        got, plain = parse_json_text(raw)
    except InputError:
        assert expected == "error", text[:200]
        return
    assert expected == "ok" and got == expected_doc
    if plain:
        assert text_problems(got, lambda path: False) == []


@pytest.mark.parametrize("raw", [
    b'{"a": 1, "a": 2}', b'[{"x": {"y": 1, "y": 1}}]',
    b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", b'{"n": 9007199254740993}', b'{"s": "\\ud800"}',
    b'{"id": "110105199003071239", "n":\n -9007199254740993}', b'[1,\t1e999]'])
def test_what_the_fast_path_must_not_skip_is_still_refused(raw: bytes) -> None:
    with pytest.raises(InputError):
        parse_json(raw)


def test_plain_text_is_only_said_of_text_without_escapes_or_raw_control_characters() -> None:
    from gateway.intake.jsoninput import parse_json_text
    assert parse_json_text('{"name": "张三", "n": 1}'.encode())[1] is True
    assert parse_json_text(b'{\n  "name": "x"\n}')[1] is True  # line breaks between tokens only
    for raw in (b'{"a": "x\\ty"}', b'{"a": "x\\u0001"}', b'{"a": "\\"q\\""}',
                b'{"a": "x\x7fy"}', '{"a": "\x85"}'.encode(), '{"\ufffe": 1}'.encode()):
        assert parse_json_text(raw)[1] is False, raw
