"""Counts that are cheap to create: every job ridden gets outcomes of its own, with four of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

K = TypeVar("K")


class Tally(dict[K, int]):
    """A ``Counter`` for adding up (``tally[key] += 1``, :meth:`add`) without ``Counter.__init__``,
    a Python-level call that cost more than the rest of a ride's bookkeeping."""

    __slots__ = ()

    def __missing__(self, key: K) -> int:
        return 0

    def add(self, other: Mapping[K, int]) -> None:
        """Add ``other``'s counts to these (``Counter.update``)."""
        for key, n in other.items():
            self[key] = self.get(key, 0) + n
