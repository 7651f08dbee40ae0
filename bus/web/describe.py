"""Matchers in words: ``bus_event_type = "rating_created"``, ``user_id is present``."""

from __future__ import annotations

import re

from bus.pipeline.matcher import Matcher, Special

_SPECIAL = {
    Special.KEY: "is present (even if null)",
    Special.VALUE: "is not null",
    Special.PRESENT: "is present and not blank",
    Special.BLANK: "is absent, null or blank",
    Special.EMPTY: 'is ""',
    Special.NIL: "is absent or null",
}
_RUBY_REGEX = re.compile(r"\(\?([mix]*)(?:-[mix]*)?:(.*)\)", re.DOTALL)


def describe_filter(name: str, value: str) -> str:
    if not value:
        return f"{name}: (empty filter, matches nothing)"
    if value in _SPECIAL:
        return f"{name} {_SPECIAL[Special(value)]}"
    regex = _RUBY_REGEX.fullmatch(value) if value.startswith("(?") else None
    if regex is not None:
        return f"{name} matches /{regex.group(2)}/{regex.group(1)}"
    if re.escape(value) == value:
        return f'{name} = "{value}"'
    return f"{name} = {value!r} or matches /^{value}$/"


def describe(matcher: Matcher) -> list[str]:
    """One line per filter; every line must hold for an event to match."""
    if not matcher.filters:
        return ["(no filters: matches nothing)"]
    return [describe_filter(name, value) for name, value in matcher.filters.items()]
