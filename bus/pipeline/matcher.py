"""Subscription matchers with Ruby queue-bus semantics: pure functions, no Redis.

A matcher is a mapping attribute name -> string filter, stored as-is in Redis. A filter
is a literal (equal to the attribute's Ruby ``to_s``, or matching ``^literal$`` as a
regex), a Ruby-serialised regex ``(?-mix:...)`` (searched, unanchored) or one of six
special values. Every filter must match; a matcher with no filters matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from bus.errors import InvalidSubscription
from bus.pipeline.rubyregex import RUBY_PREFIX, RegexNotPortable, compile_ruby, to_ruby

SPECIAL_PREFIX = "bus_special_value_"
_RUBY_WHITESPACE = "\x00\t\n\v\f\r "


class Special(StrEnum):
    """The special filter values; each is stored as its string value."""

    KEY = SPECIAL_PREFIX + "key"
    """The attribute is present, even if null."""
    BLANK = SPECIAL_PREFIX + "blank"
    """Absent, null, or only whitespace."""
    EMPTY = SPECIAL_PREFIX + "empty"
    """Present, not null, and the empty string."""
    NIL = SPECIAL_PREFIX + "nil"
    """Absent or null."""
    VALUE = SPECIAL_PREFIX + "value"
    """Not null."""
    PRESENT = SPECIAL_PREFIX + "present"
    """Not blank."""

    def __str__(self) -> str:
        return self.value


KEY, BLANK, EMPTY, NIL, VALUE, PRESENT = (
    Special.KEY,
    Special.BLANK,
    Special.EMPTY,
    Special.NIL,
    Special.VALUE,
    Special.PRESENT,
)

MatcherSpec = Mapping[str, "str | int | float | bool | Special | re.Pattern[str]"]
_Test = Callable[[Mapping[str, Any]], bool]


def ruby_float(value: float) -> str:
    """``Float#to_s``: like ``repr`` but ``1.0e+16`` rather than ``1e+16``."""
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        sign = exponent[0] if exponent[0] in "+-" else "+"
        digits = exponent.lstrip("+-").rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    if text in ("inf", "-inf", "nan"):
        return {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}[text]
    return text


def ruby_to_s(value: Any) -> str:
    """The string Ruby's ``to_s`` gives for a decoded JSON value."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return ruby_float(value)
    return _ruby_inspect(value)


def _ruby_inspect(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None:
        return "nil"
    if isinstance(value, list):
        return "[" + ", ".join(_ruby_inspect(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_ruby_inspect(k)}=>{_ruby_inspect(v)}" for k, v in value.items()) + "}"
    return ruby_to_s(value)


def _is_blank(given: Any) -> bool:
    return not ruby_to_s(given).strip(_RUBY_WHITESPACE)


def _special_test(name: str, special: str) -> _Test:
    if special == Special.KEY:
        return lambda a: name in a
    if special == Special.BLANK:
        return lambda a: _is_blank(a.get(name))
    if special == Special.EMPTY:
        return lambda a: a.get(name) is not None and ruby_to_s(a.get(name)) == ""
    if special == Special.NIL:
        return lambda a: a.get(name) is None
    if special == Special.VALUE:
        return lambda a: a.get(name) is not None
    return lambda a: not _is_blank(a.get(name))


def _regex_test(name: str, pattern: re.Pattern[str]) -> _Test:
    search = pattern.search
    return lambda a: search(ruby_to_s(a.get(name))) is not None


def _literal_test(name: str, literal: str) -> _Test:
    try:
        pattern: re.Pattern[str] | None = compile_ruby("^" + literal + "$")
    except RegexNotPortable:
        pattern = None  # Ruby rescues a bad regex and falls back to equality
    if pattern is None:
        return lambda a: ruby_to_s(a.get(name)) == literal
    plain = re.escape(literal) == literal  # no metacharacters: only newlines can matter
    search = pattern.search

    def test(attributes: Mapping[str, Any]) -> bool:
        given = ruby_to_s(attributes.get(name))
        if given == literal:
            return True
        if plain and "\n" not in given:
            return False
        return search(given) is not None

    return test


def _compile_filter(name: str, value: str) -> _Test:
    if not value:
        return lambda a: False
    if value.startswith(SPECIAL_PREFIX) and value in Special._value2member_map_:
        return _special_test(name, value)
    if value.startswith(RUBY_PREFIX):
        try:
            return _regex_test(name, compile_ruby(value))
        except RegexNotPortable:
            return lambda a: ruby_to_s(a.get(name)) == value
    return _literal_test(name, value)


class Matcher:
    """A compiled matcher; build it from Redis filters or from a declaration."""

    __slots__ = ("_tests", "filters")

    def __init__(self, filters: Mapping[str, Any]) -> None:
        self.filters: dict[str, str] = {str(k): ruby_to_s(v) for k, v in filters.items()}
        self._tests = [_compile_filter(k, v) for k, v in self.filters.items()]

    def exact(self, name: str) -> str | None:
        """The one string without a newline that attribute ``name`` must equal for a match (a
        literal filter without regex metacharacters); None when the filter allows more (or
        there is none). A string with a newline may still match such a literal line by line,
        as Ruby's ``^...$`` does."""
        value = self.filters.get(name)
        if not value or value.startswith((SPECIAL_PREFIX, RUBY_PREFIX)):
            return None
        return value if re.escape(value) == value else None

    @classmethod
    def declare(cls, spec: MatcherSpec) -> Matcher:
        """Validate a matcher written in Python and convert it to its stored form."""
        if not isinstance(spec, Mapping) or not spec:
            raise InvalidSubscription("a matcher needs at least one attribute filter (an empty one matches nothing)")
        filters: dict[str, str] = {}
        for name, value in spec.items():
            if not isinstance(name, str) or not name:
                raise InvalidSubscription(f"matcher attribute names must be non-empty strings, got {name!r}")
            filters[name] = _declared_value(name, value)
        return cls(filters)

    def matches(self, attributes: Mapping[str, Any] | None) -> bool:
        if not self._tests or attributes is None:
            return False
        return all(test(attributes) for test in self._tests)

    def to_redis(self) -> dict[str, str]:
        return dict(self.filters)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Matcher) and other.filters == self.filters

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.filters.items())))

    def __repr__(self) -> str:
        return f"Matcher({self.filters!r})"


def _declared_value(name: str, value: Any) -> str:
    if isinstance(value, Special):
        return value.value
    if isinstance(value, re.Pattern):
        return to_ruby(value)
    if isinstance(value, str):
        if not value:
            raise InvalidSubscription(f"matcher filter {name!r} is empty (use BLANK or EMPTY)")
        if value.startswith(RUBY_PREFIX):
            compile_ruby(value)
        return value
    if isinstance(value, bool | int | float):
        return ruby_to_s(value)
    if value is None:
        raise InvalidSubscription(f"matcher filter {name!r} is None (use NIL or BLANK)")
    raise InvalidSubscription(
        f"matcher filter {name!r} must be a string, number, bool, regex or special value, not {type(value).__name__}"
    )
