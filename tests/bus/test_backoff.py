"""The one backoff: doubling from a first wait, capped, reset after a success."""

from __future__ import annotations

from bus.backoff import Backoff, exponential


def test_waits_double_up_to_the_cap_and_start_over_after_reset() -> None:
    backoff = Backoff(first=0.05, cap=0.3)
    assert [backoff.next() for _ in range(5)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    backoff.reset()
    assert backoff.next() == 0.05


def test_a_huge_attempt_number_stays_at_the_cap() -> None:
    assert exponential(1.0, 10_000, 60.0) == 60.0
    assert exponential(2.0, 0, 60.0) == 2.0
