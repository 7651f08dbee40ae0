"""Which subscriptions an event could match, found by its type instead of asking every one.

Nearly every subscription names one event type (``subscribe "rating_created"``), so a
driver asking each subscription's matcher about each event spends most of its matching
on subscriptions that cannot match. The index answers with the subscriptions whose event
type filter is exactly the event's type, plus every subscription that allows more than
one type (regexes, specials, none); the matchers still decide, so what matches is the same
as asking them all, in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bus.pipeline.subscription import Subscription

EVENT_TYPE = "bus_event_type"


class SubscriptionIndex:
    """The subscriptions of one load of the registry, by the event type each one requires."""

    def __init__(self, subscriptions: Sequence[Subscription]) -> None:
        self.subscriptions = list(subscriptions)
        by_type: dict[str, list[int]] = {}
        always: list[int] = []
        for at, sub in enumerate(self.subscriptions):
            event_type = sub.matcher.exact(EVENT_TYPE)
            if event_type is None:
                always.append(at)
            else:
                by_type.setdefault(event_type, []).append(at)
        self._others = [self.subscriptions[at] for at in always]
        # In registry order, so the fan-out order is what asking every subscription gives.
        self._by_type = {
            event_type: [self.subscriptions[at] for at in sorted(ats + always)] for event_type, ats in by_type.items()
        }

    def candidates(self, attributes: Mapping[str, Any]) -> list[Subscription]:
        """The subscriptions that may match ``attributes`` (their matchers decide)."""
        event_type = attributes.get(EVENT_TYPE)
        if type(event_type) is not str or "\n" in event_type:  # Ruby's ^...$ matches line by line
            return self.subscriptions
        return self._by_type.get(event_type, self._others)
