"""``tests.support.polling.wait_for``: the value once the condition holds, else a failure that says why."""

from __future__ import annotations

import itertools

import pytest

from tests.support.polling import NotInTime, wait_for


def test_it_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_for(lambda: next(counter) >= 3 and "third", interval=0) == "third"


def test_past_the_deadline_it_fails_the_test_with_the_message_and_the_last_value() -> None:
    with pytest.raises(NotInTime, match=r"not within 0.05s: the queue drained \(last: 0\)") as failure:
        wait_for(lambda: 0, timeout=0.05, interval=0.01, message="the queue drained")
    assert isinstance(failure.value, AssertionError)  # pytest reports a failure, not an error


def test_without_a_message_it_names_the_condition_and_asks_a_callable_message_only_then() -> None:
    with pytest.raises(NotInTime, match=r"wait_for\(lambda: \[\], timeout=0\)"):
        wait_for(lambda: [], timeout=0)
    asked: list[str] = []

    def log() -> str:
        asked.append("log")
        return "the log says: nothing"

    with pytest.raises(NotInTime, match="the log says: nothing"):
        wait_for(lambda: None, timeout=0.02, interval=0.01, message=log)
    assert asked == ["log"]


def test_not_yet_errors_are_retried_and_any_other_error_fails_at_once() -> None:
    attempts = itertools.count()

    def flaky() -> str:
        if next(attempts) < 2:
            raise ConnectionError("still starting")
        return "up"

    assert wait_for(flaky, interval=0, not_yet=(ConnectionError,)) == "up"
    with pytest.raises(NotInTime, match=r"last: ConnectionError\('still starting'\)"):
        wait_for(_refuse, timeout=0.02, interval=0.01, not_yet=(ConnectionError,))
    with pytest.raises(ValueError, match="the process died"):
        wait_for(_die, timeout=5)


def _refuse() -> str:
    raise ConnectionError("still starting")


def _die() -> bool:
    raise ValueError("the process died")
