"""gateway/security/masking.py: the fast walk masks exactly what the plain recursive walk masks.

Every answer to a masked caller goes through :func:`mask_values`; it skips documents (and
values) whose JSON text shows no occurrence, and tells containers apart by exact type. A value it
wrongly judged absent would hand out an ID number in full."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.security.masking import mask_case, mask_id, mask_values


def _reference(doc: Any, values: Mapping[str, str]) -> Any:
    """The walk as first written: every string and key, every value in turn."""
    if not values:
        return doc
    if isinstance(doc, str):
        for plain, masked in values.items():
            doc = doc.replace(plain, masked)
        return doc
    if isinstance(doc, Mapping):
        return {_reference(k, values): _reference(v, values) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [_reference(v, values) for v in doc]
    return doc


_plains = st.text(alphabet="0123456789X\"\\\n\u00e9\u4e2d", min_size=1, max_size=5)
_strings = st.text(alphabet="0123456789X\"\\\n\u00e9\u4e2d ab", max_size=12)
_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _strings,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(_strings, inner, max_size=4),
    max_leaves=25)


@settings(max_examples=500, deadline=None)
@given(_docs, st.dictionaries(_plains, st.just("*"), max_size=3))
def test_the_fast_walk_masks_what_the_reference_walk_masks(doc: Any,
                                                           values: dict[str, str]) -> None:
    ordered = dict(sorted(values.items(), key=lambda kv: -len(kv[0])))
    assert _lists(mask_values(doc, ordered)) == _lists(_reference(doc, ordered))


def _lists(doc: Any) -> Any:
    """Tuples as lists (as they are written in JSON): a document nothing was masked in comes
    back as it was given."""
    if isinstance(doc, dict):
        return {k: _lists(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [_lists(v) for v in doc]
    return doc


def test_a_value_only_in_a_key_or_behind_an_escape_is_still_masked() -> None:
    cert = "110105199003071239"
    values = {cert: mask_id(cert)}
    assert mask_values({cert: 1}, values) == {mask_id(cert): 1}
    assert mask_values(["x\n" + cert + "\""], values) == ["x\n" + mask_id(cert) + "\""]
    assert mask_values({"big": 2 ** 70, "s": cert}, values) == {"big": 2 ** 70,
                                                                "s": mask_id(cert)}


def test_a_document_without_the_values_comes_back_as_it_is() -> None:
    body = {"applicant": {"certType": "111", "certNo": "110105199003071239",
                          "phone": "13800000001"}}
    view = {"id": "c-1", "items": {"1": {"status": "submitted"}}, "attempts": 2}
    assert mask_case(view, body) is view
    # the phone's digits as a number in the text: walked, and a number is no string to mask
    with_number = {**view, "n": 13800000001}
    assert mask_case(with_number, body) == with_number
