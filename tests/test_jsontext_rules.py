"""JSON values as the database columns hold them (domain.jsontext), in milliseconds."""

import json

from hypothesis import given
from hypothesis import strategies as st

from whyops_local.domain import jsontext

# Any character, NUL and lone surrogates included (JSON can spell both; Python reads both).
text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**80, max_value=2**80) | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=20)


def _holdable_by_jsonb(value) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return all(_holdable_by_jsonb(k) and _holdable_by_jsonb(v) for k, v in value.items())
    if isinstance(value, list):
        return all(map(_holdable_by_jsonb, value))
    return True


@given(json_values)
def test_any_json_value_goes_into_jsonb_and_comes_back_exactly(value):
    stored = jsontext.for_jsonb(value)
    assert _holdable_by_jsonb(stored)
    assert jsontext.from_jsonb(json.loads(json.dumps(stored))) == value


def test_a_value_jsonb_holds_is_stored_as_it_is_and_one_looking_like_the_wrapper_is_wrapped_too():
    plain = {"messages": [{"role": "user", "content": "é \U0001f600 \\u0000"}], "big": 2**70}
    assert jsontext.for_jsonb(plain) is plain
    assert jsontext.for_jsonb({"a": "x\x00"}) != {"a": "x\x00"}
    lookalike = jsontext.for_jsonb({"a": "\udc00"})
    assert jsontext.for_jsonb(lookalike) != lookalike
    assert jsontext.from_jsonb(jsontext.for_jsonb(lookalike)) == lookalike


def test_text_columns_get_a_replacement_character_for_what_they_cannot_hold():
    assert jsontext.storable_text("a\x00b\udc00c é") == "a\ufffdb\ufffdc é"
