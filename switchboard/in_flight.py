"""``concurrency``: how many provider calls a switchboard process has in flight at once.

The worker rides a quarter more events than that (:func:`rides_for`): the next sends claim
and render, and the last ones record, while ``concurrency`` sends are at their providers, so
none of those slots waits on the switchboard's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import weakref

PREPARING_SHARE = 0.25
"""Rides beyond ``concurrency``, as a share of it: enough to cover the claim and record around
each 100-300 ms provider call (about a tenth of it under load)."""


def rides_for(concurrency: int) -> int:
    """The worker's concurrency (rides at once) for ``concurrency`` provider calls at once."""
    return concurrency + max(1, int(concurrency * PREPARING_SHARE))


class CallSlots:
    """At most ``limit`` provider calls at once on each event loop (a process runs one; tests
    may run several one after another)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def slot(self) -> asyncio.Semaphore:
        """The running loop's slots: ``async with slots.slot():`` around a provider call."""
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.limit)
        return slots
