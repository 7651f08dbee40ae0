"""Waiting for what another thread or process does: poll a condition until a deadline.

Tests never sleep to let things happen; they poll the condition that shows it happened.
A condition can also fail at once (raise) when waiting longer is pointless, for example
when the process it waits for has exited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class NotInTime(AssertionError):
    """A polled condition did not hold before its deadline: a test failure, not an error."""


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str | Callable[[], str] = "",
    not_yet: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy; return that.

    Exceptions of the ``not_yet`` types count as "not yet" (a server still starting); any
    other propagates at once. After ``timeout`` seconds, :class:`NotInTime` says
    ``message`` (a callable is asked then, so it can read a log) and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        last: object
        try:
            value = condition()
            last = value
        except not_yet as exc:
            value, last = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise NotInTime(f"not within {timeout:g}s: {text or _describe(condition)} (last: {last!r})")
        time.sleep(interval)


def _describe(condition: Callable[[], object]) -> str:
    """The condition's source line (a lambda at its call site), else its name."""
    import inspect  # only on failure: the benchmark's worker processes import this module

    try:
        return " ".join(inspect.getsource(condition).split())
    except (OSError, TypeError):
        return getattr(condition, "__qualname__", repr(condition))
