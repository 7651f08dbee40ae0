"""Exponential backoff: the one place a delay doubles, up to a cap."""

from __future__ import annotations

MAX_DOUBLINGS = 64
"""Past this many doublings every delay is at its cap anyway; stops 2.0 ** n overflowing."""


def exponential(first: float, attempt: int, cap: float) -> float:
    """The wait before try ``attempt`` (1-based): ``first``, doubled after each try, at most ``cap``."""
    return float(min(cap, first * 2.0 ** min(max(attempt - 1, 0), MAX_DOUBLINGS)))


class Backoff:
    """Waits for riding out an outage: ``first``, doubling up to ``cap``; :meth:`reset` after a success."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self.attempt = 0

    def next(self) -> float:
        """The next wait (the first call gives ``first``)."""
        self.attempt += 1
        return exponential(self.first, self.attempt, self.cap)

    def reset(self) -> None:
        self.attempt = 0
