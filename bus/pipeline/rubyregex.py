"""Regexes shared with Ruby: the common subset of Ruby (Onigmo) and Python ``re``.

Subscriptions store regexes as Ruby's ``Regexp#to_s`` (``(?-mix:^user_)``) and every
driver, in any language, evaluates them with Ruby's rules: ``^``/``$`` match at line
boundaries and ``\\d``, ``\\w``, ``\\s`` are ASCII. We accept, translate and check only
constructs both engines read the same way, and reject the rest with a clear error at
subscribe time rather than matching differently at drive time.
"""

from __future__ import annotations

import re

from bus.errors import InvalidSubscription

RUBY_PREFIX = "(?-mix:"
RUBY_FLAGS = re.MULTILINE | re.ASCII

_SIMPLE_ESCAPES = set("dwsDWSbBntrfv0123456789xu")
_GROUP_OPENERS = ("?:", "?=", "?!", "?<=", "?<!", "?>", "?i:", "?-i:")
_RUBY_NAMED_GROUP = re.compile(r"\?<([A-Za-z_]\w*)>")
_PYTHON_NAMED_GROUP = re.compile(r"\?P<([A-Za-z_]\w*)>")
_RUBY_FLAG_GROUP = re.compile(r"\?([imx]*)(?:-([imx]*))?:")
_RUBY_TO_PYTHON_FLAG = {"i": "i", "m": "s", "x": "x"}


class RegexNotPortable(InvalidSubscription):
    """A regex outside the subset Ruby and Python read the same way."""


def _translate(source: str, *, from_ruby: bool) -> str:
    """Check ``source`` against the common subset and rewrite the few anchors that differ."""
    out: list[str] = []
    i, n = 0, len(source)
    in_class = False
    while i < n:
        ch = source[i]
        if ch == "\\":
            if i + 1 >= n:
                raise RegexNotPortable(f"regex {source!r} ends with a lone backslash")
            nxt = source[i + 1]
            out.append(_translate_escape(source, nxt, from_ruby=from_ruby, in_class=in_class))
            i += 2
            continue
        if in_class:
            if ch == "[":
                raise RegexNotPortable(
                    f"regex {source!r}: nested or POSIX character classes differ between Ruby and Python"
                )
            if ch == "&" and source.startswith("&&", i):
                raise RegexNotPortable(f"regex {source!r}: class intersection (&&) is Ruby-only")
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if i < n and source[i] == "^":
                out.append("^")
                i += 1
            if i < n and source[i] == "]":  # a literal ] first in a class
                out.append("\\]")
                i += 1
            continue
        if ch == "(" and source.startswith("?", i + 1):
            rest = source[i + 1 :]
            opener = next((o for o in _GROUP_OPENERS if rest.startswith(o)), None)
            flags = _RUBY_FLAG_GROUP.match(rest) if from_ruby and opener is None else None
            if flags is not None:
                out.append(_python_flag_group(flags.group(1), flags.group(2) or ""))
                i += 1 + len(flags.group(0))
                continue
            if opener is None:
                named = (_RUBY_NAMED_GROUP if from_ruby else _PYTHON_NAMED_GROUP).match(rest)
                if named is None:
                    raise RegexNotPortable(
                        f"regex {source!r}: group syntax {source[i : i + 4]!r}... is not in the "
                        "Ruby/Python common subset (use (?:...), (?=...), (?!...), (?<=...), "
                        "(?<!...), named groups or (?i:...))"
                    )
                out.append(("(?P<" if from_ruby else "(?<") + named.group(1) + ">")
                i += 1 + len(named.group(0))
                continue
            out.append("(" + opener)
            i += 1 + len(opener)
            continue
        out.append(ch)
        i += 1
    if in_class:
        raise RegexNotPortable(f"regex {source!r} has an unterminated character class")
    return "".join(out)


def _python_flag_group(on: str, off: str) -> str:
    """Ruby's ``(?mi-x:`` as Python spells it (Ruby's ``m`` is Python's ``s``)."""
    on = "".join(sorted({_RUBY_TO_PYTHON_FLAG[f] for f in on}))
    off = "".join(sorted({_RUBY_TO_PYTHON_FLAG[f] for f in off} - set(on)))
    return "(?" + on + ("-" + off if off else "") + ":" if on or off else "(?:"


def _translate_escape(source: str, nxt: str, *, from_ruby: bool, in_class: bool) -> str:
    if nxt in _SIMPLE_ESCAPES or not nxt.isalnum():
        return "\\" + nxt
    if nxt == "A" and not in_class:
        return "\\A"
    if from_ruby:
        if nxt == "z" and not in_class:
            return "\\Z"
        if nxt == "Z" and not in_class:
            return "(?=\\n?\\Z)"
        if nxt == "h":
            return "0-9a-fA-F" if in_class else "[0-9a-fA-F]"
    elif nxt == "Z" and not in_class:
        return "\\z"
    raise RegexNotPortable(f"regex {source!r}: escape \\{nxt} is not in the Ruby/Python common subset")


def to_ruby(pattern: re.Pattern[str]) -> str:
    """Serialise a Python pattern as Ruby's ``Regexp#to_s`` would, or raise."""
    if not isinstance(pattern.pattern, str):
        raise RegexNotPortable("byte-string regexes cannot be shared with Ruby")
    extra = pattern.flags & ~(re.UNICODE | re.ASCII)
    if extra:
        raise RegexNotPortable(
            f"regex {pattern.pattern!r}: flags {re.RegexFlag(extra)!r} cannot be stored; "
            "use an inline group such as (?i:...) instead"
        )
    ruby = _translate(pattern.pattern, from_ruby=False)
    compile_ruby(RUBY_PREFIX + ruby + ")")  # what every driver will run must compile
    return RUBY_PREFIX + ruby + ")"


def compile_ruby(source: str) -> re.Pattern[str]:
    """Compile Ruby regex source for evaluation with Ruby's semantics, or raise."""
    python = _translate(source, from_ruby=True)
    try:
        return re.compile(python, RUBY_FLAGS)
    except re.error as exc:
        raise RegexNotPortable(f"regex {source!r} does not compile: {exc}") from None
