"""gateway/jsoncodec.py: the fast reader and writer give the documents the standard library gives.

The store reads every JSON column through :func:`gateway.jsoncodec.loads` (an outbox batch of a
thousand back-flow records, a case body): a stored integer beyond 64 bits must come back exact,
not as the float orjson would make of it, and text orjson refuses must still be read as
:func:`json.loads` reads it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import jsoncodec

documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_loads_reads_what_json_reads(doc: object) -> None:
    text = json.dumps(doc, ensure_ascii=False)
    got = jsoncodec.loads(text)
    assert got == json.loads(text)
    assert jsoncodec.loads(text.encode("utf-8")) == got
    assert json.dumps(got) == json.dumps(json.loads(text))  # same types (int stays int)


@pytest.mark.parametrize("text", [
    "123456789012345678901234567890", "18446744073709551616", "-9223372036854775809",
    '{"n": 99999999999999999999, "s": "x"}', "[1, 340282366920938463463374607431768211457]"])
def test_integers_beyond_64_bits_come_back_exact(text: str) -> None:
    got = jsoncodec.loads(text)
    assert got == json.loads(text)
    assert "e+" not in json.dumps(got)  # an int, not a float


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '"\\ud800"', "1e400"])
def test_text_orjson_refuses_is_read_as_json_reads_it(text: str) -> None:
    assert json.dumps(jsoncodec.loads(text)) == json.dumps(json.loads(text))


def test_bad_json_still_raises_a_value_error() -> None:
    with pytest.raises(ValueError):
        jsoncodec.loads('{"a": ')


def test_writer_round_trips_through_the_reader() -> None:
    doc = {"big": 2 ** 70, "name": "张三", "list": [1, 2.5, None, True]}
    assert jsoncodec.loads(jsoncodec.dumps(doc)) == doc


def _stdlib_canonical(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8", "surrogatepass")


@settings(max_examples=500, deadline=None)
@given(documents)
def test_canonical_is_the_standard_librarys_text(doc: object) -> None:
    """Digests stored before (case bodies, inbound cases) were taken of the standard library's
    text: the fast writer must give the same bytes for any document."""
    assert jsoncodec.canonical(doc) == _stdlib_canonical(doc)


@pytest.mark.parametrize("doc", [
    {"small": 1e-05}, {"small": 1.5e-07}, [0.0001, 0.00012, -3e-9], {"big": 1e16, "n": 2 ** 70},
    {"s": "\ud800"}, {"z": 1, "a": {"ä": "\u2028", "b": "\x00\x1f\x7f"}}, {"a": "0.00001"}])
def test_canonical_where_the_writers_spell_numbers_or_strings_apart(doc: object) -> None:
    assert jsoncodec.canonical(doc) == _stdlib_canonical(doc)
