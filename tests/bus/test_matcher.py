"""Matcher semantics as Ruby queue-bus defines them: a table, then properties against a model."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus import BLANK, EMPTY, KEY, NIL, PRESENT, VALUE, InvalidSubscription
from bus.pipeline.matcher import Matcher, ruby_float, ruby_to_s
from bus.pipeline.rubyregex import RegexNotPortable, compile_ruby

# (filters as stored in Redis, attributes, expected) — the cases of queue-bus's matcher_spec.rb
# plus the literal-as-anchored-regex rule and Ruby's to_s of non-strings.
RUBY_CASES: list[tuple[dict[str, str], dict[str, Any] | None, bool]] = [
    ({}, {}, False),
    ({}, None, False),
    ({}, {"name": "val"}, False),
    ({"name": "val"}, None, False),
    ({"name": "val"}, {"name": "val"}, True),
    ({"name": "val"}, {"name": " val"}, False),
    ({"name": "val"}, {"name": "zval"}, False),
    ({"name": "(?-mix:^[cb]a+t)"}, {"name": "cat"}, True),
    ({"name": "(?-mix:^[cb]a+t)"}, {"name": "bat"}, True),
    ({"name": "(?-mix:^[cb]a+t)"}, {"name": "caaaaat"}, True),
    ({"name": "(?-mix:^[cb]a+t)"}, {"name": "ct"}, False),
    ({"name": "(?-mix:^[cb]a+t)"}, {"name": "bcat"}, False),
    ({"name": "(?-mix:a+t)"}, {"name": "the cat sat"}, True),  # regexes are unanchored
    ({"name": PRESENT}, {"name": ""}, False),
    ({"name": PRESENT}, {"name": "cat"}, True),
    ({"name": PRESENT}, {"other": "bear"}, False),
    ({"name": PRESENT}, {"name": " \t\n"}, False),
    ({"name": BLANK}, {"name": None}, True),
    ({"name": BLANK}, {"other": "bear"}, True),
    ({"name": BLANK}, {"name": ""}, True),
    ({"name": BLANK}, {"name": "  "}, True),
    ({"name": BLANK}, {"name": "bear"}, False),
    ({"name": BLANK}, {"name": "   s "}, False),
    ({"name": NIL}, {"name": None}, True),
    ({"name": NIL}, {"other": "bear"}, True),
    ({"name": NIL}, {"name": ""}, False),
    ({"name": NIL}, {"name": "  "}, False),
    ({"name": NIL}, {"name": "bear"}, False),
    ({"name": KEY}, {"name": None}, True),
    ({"name": KEY}, {"other": "bear"}, False),
    ({"name": KEY}, {"name": ""}, True),
    ({"name": KEY}, {"name": "bear"}, True),
    ({"name": EMPTY}, {"name": None}, False),
    ({"name": EMPTY}, {"other": "bear"}, False),
    ({"name": EMPTY}, {"name": ""}, True),
    ({"name": EMPTY}, {"name": "  "}, False),
    ({"name": EMPTY}, {"name": "bear"}, False),
    ({"name": VALUE}, {"name": None}, False),
    ({"name": VALUE}, {"other": "bear"}, False),
    ({"name": VALUE}, {"name": ""}, True),
    ({"name": VALUE}, {"name": "   s "}, True),
    ({"name": "(?-mix:^[cb]a+t)", "state": "sleeping"}, {"state": "sleeping", "name": "cat"}, True),
    ({"name": "(?-mix:^[cb]a+t)", "state": "sleeping"}, {"state": "awake", "name": "cat"}, False),
    ({"name": "(?-mix:^[cb]a+t)", "state": "sleeping"}, {"state": "sleeping", "name": "bear"}, False),
    # a literal also matches as a regex anchored ^...$
    ({"bus_event_type": "event_.*"}, {"bus_event_type": "event_one"}, True),
    ({"bus_event_type": "event_.*"}, {"bus_event_type": "my_event_one"}, False),
    ({"bus_event_type": "a|b"}, {"bus_event_type": "axx"}, True),  # "^a|b$" as Ruby builds it
    ({"bus_event_type": "user_created"}, {"bus_event_type": "x\nuser_created"}, True),  # ^ $ are line anchors
    ({"bus_event_type": "bad(regex"}, {"bus_event_type": "bad(regex"}, True),  # invalid regex: equality only
    ({"bus_event_type": "bad(regex"}, {"bus_event_type": "badregex"}, False),
    # values compare by Ruby's to_s
    ({"id": "42"}, {"id": 42}, True),
    ({"price": "4.5"}, {"price": 4.5}, True),
    ({"paid": "true"}, {"paid": True}, True),
    ({"paid": "false"}, {"paid": False}, True),
    ({"n": ""}, {"n": None}, False),  # an empty filter never matches
    ({"big": "1.0e+16"}, {"big": 1e16}, True),
    ({"list": '[1, "a", nil]'}, {"list": [1, "a", None]}, True),  # Array#to_s (pre-3.4 inspect)
    # Ruby semantics for \d and \w: ASCII only
    ({"code": "(?-mix:^\\d+$)"}, {"code": "١٢"}, False),
    ({"code": "(?-mix:^\\d+$)"}, {"code": "12"}, True),
    # flags Ruby serialises into the group are honoured
    ({"name": "(?-mix:(?i:CAT))"}, {"name": "cat"}, True),
]


@pytest.mark.parametrize(("filters", "attributes", "expected"), RUBY_CASES)
def test_ruby_semantics(filters: dict[str, str], attributes: dict[str, Any] | None, expected: bool) -> None:
    assert Matcher(filters).matches(attributes) is expected
    assert reference_match(filters, attributes) is expected


def test_declared_python_matchers_convert_to_ruby_strings() -> None:
    m = Matcher.declare(
        {"bus_event_type": re.compile(r"^user_\d+\Z"), "user_id": PRESENT, "page": "homepage", "n": 3, "ok": True}
    )
    assert m.to_redis() == {
        "bus_event_type": "(?-mix:^user_\\d+\\z)",
        "user_id": "bus_special_value_present",
        "page": "homepage",
        "n": "3",
        "ok": "true",
    }
    assert m.matches({"bus_event_type": "user_12", "user_id": 1, "page": "homepage", "n": 3, "ok": True})
    assert not m.matches({"bus_event_type": "user_12\n", "user_id": 1, "page": "homepage", "n": 3, "ok": True})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "at least one"),
        ({"a": None}, "use NIL or BLANK"),
        ({"a": ""}, "empty"),
        ({"a": [1]}, "must be a string"),
        ({"": "x"}, "non-empty strings"),
        ({"a": re.compile("x", re.IGNORECASE)}, "inline group"),
        ({"a": "(?-mix:[[:alpha:]])"}, "POSIX"),
        ({"a": re.compile(r"(?P<n>a)(?P=n)")}, "common subset"),
        ({"a": "(?-mix:[a&&b])"}, "intersection"),
    ],
)
def test_bad_matchers_are_rejected_at_declaration(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSubscription, match=re.escape(message)):
        Matcher.declare(spec)


def test_ruby_to_s_of_json_values() -> None:
    assert [ruby_to_s(v) for v in (None, True, False, 42, -7, 4.5, 100.0, "x")] == [
        "",
        "true",
        "false",
        "42",
        "-7",
        "4.5",
        "100.0",
        "x",
    ]
    assert ruby_float(1e16) == "1.0e+16"
    assert ruby_float(1.5e-05) == "1.5e-05"
    assert ruby_float(1e100) == "1.0e+100"
    assert ruby_to_s({"a": 1}) == '{"a"=>1}'


# --- the reference model: a line-by-line transliteration of queue-bus's Matcher#match? ---
WHITESPACE = "\x00\t\n\v\f\r "


def reference_match(filters: dict[str, str], attributes: dict[str, Any] | None) -> bool:
    if not filters or attributes is None:
        return False
    for key in filters:
        mine = ruby_to_s(filters[key])
        if len(mine) == 0:
            return False
        given = attributes.get(key)
        if mine == "bus_special_value_key":
            ok = key in attributes
        elif mine == "bus_special_value_blank":
            ok = len(ruby_to_s(given).strip(WHITESPACE)) == 0
        elif mine == "bus_special_value_empty":
            ok = given is not None and len(ruby_to_s(given)) == 0
        elif mine == "bus_special_value_nil":
            ok = given is None
        elif mine == "bus_special_value_value":
            ok = given is not None
        elif mine == "bus_special_value_present":
            ok = len(ruby_to_s(given).strip(WHITESPACE)) > 0
        else:
            text = ruby_to_s(given)
            if mine == text:
                ok = True
            else:
                try:
                    regex = compile_ruby(mine if mine[0:7] == "(?-mix:" else "^" + mine + "$")
                    ok = regex.search(text) is not None
                except RegexNotPortable:
                    ok = False
        if not ok:
            return False
    return True


ATOMS = ["a", "b", "_", "1", ".", "*", "+", "?", "|", "^", "$", "(", ")", "[", "]", "\\d", "\n", " ", "é"]
fragments = st.lists(st.sampled_from(ATOMS), max_size=6).map("".join)
specials = st.sampled_from([s.value for s in (KEY, BLANK, EMPTY, NIL, VALUE, PRESENT)])
filter_values = st.one_of(fragments, specials, fragments.map(lambda f: f"(?-mix:{f})"))
names = st.sampled_from(["a", "b", "bus_event_type"])
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-100, 100),
    st.floats(allow_nan=False, allow_infinity=False),
    fragments,
    st.text(max_size=5),
)


@settings(max_examples=400, deadline=None)
@given(filters=st.dictionaries(names, filter_values, max_size=3), attributes=st.dictionaries(names, values, max_size=3))
def test_compiled_matcher_agrees_with_reference(filters: dict[str, str], attributes: dict[str, Any]) -> None:
    assert Matcher(filters).matches(attributes) == reference_match(filters, attributes)


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.integers(), st.booleans(), st.text(min_size=1, max_size=8).filter(lambda s: s.strip())))
def test_declared_literal_matches_its_own_value(value: Any) -> None:
    """Whatever a publisher sends, a filter declared with that same value matches it."""
    m = Matcher.declare({"x": value})
    assert m.matches({"x": value})
