"""The Ruby/Python regex common subset: translation both ways and clear rejections."""

from __future__ import annotations

import re

import pytest

from bus.pipeline.rubyregex import RegexNotPortable, compile_ruby, to_ruby


@pytest.mark.parametrize(
    ("python", "ruby"),
    [
        (r"^user_", "(?-mix:^user_)"),
        (r"^(created|updated)$", "(?-mix:^(created|updated)$)"),
        (r"\Aorder_\d{2,}\Z", "(?-mix:\\Aorder_\\d{2,}\\z)"),
        (r"(?P<kind>a|b)+?", "(?-mix:(?<kind>a|b)+?)"),
        (r"(?i:abc)[^\]x-z]", "(?-mix:(?i:abc)[^\\]x-z])"),
        (r"(?<=a)b(?!c)", "(?-mix:(?<=a)b(?!c))"),
        (r"a\.b\/c", "(?-mix:a\\.b\\/c)"),
    ],
)
def test_python_patterns_serialise_as_ruby_would(python: str, ruby: str) -> None:
    assert to_ruby(re.compile(python)) == ruby


@pytest.mark.parametrize(
    ("ruby", "matches", "misses"),
    [
        ("(?-mix:^user_)", ["user_x", "a\nuser_x"], ["auser_x"]),
        ("(?-mix:x\\z)", ["ax"], ["ax\n"]),
        ("(?-mix:x\\Z)", ["ax", "ax\n"], ["axy"]),
        ("(?-mix:^\\h+$)", ["09afAF"], ["xyz"]),
        ("(?-mix:(?<n>ab)+)", ["abab"], ["ba"]),
        ("(?i-mx:cat)", ["CAT"], ["dog"]),
        ("(?m-ix:a.b)", ["a\nb"], ["ab"]),
    ],
)
def test_ruby_patterns_evaluate_with_ruby_semantics(ruby: str, matches: list[str], misses: list[str]) -> None:
    pattern = compile_ruby(ruby)
    assert all(pattern.search(text) for text in matches)
    assert not any(pattern.search(text) for text in misses)


@pytest.mark.parametrize(
    "source",
    [r"\p{Alpha}", r"[[:alpha:]]", r"[a-z&&[^aeiou]]", r"(?#comment)", r"\k<n>", r"\R", r"\G", "[abc", "a\\"],
)
def test_constructs_outside_the_common_subset_are_rejected(source: str) -> None:
    with pytest.raises(RegexNotPortable):
        compile_ruby(source)


def test_python_flags_are_rejected_with_advice() -> None:
    with pytest.raises(RegexNotPortable, match=r"\(\?i:\.\.\.\)"):
        to_ruby(re.compile("abc", re.IGNORECASE | re.MULTILINE))
