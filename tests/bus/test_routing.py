"""The driver's subscription index finds exactly what asking every matcher finds, in the same order."""

from __future__ import annotations

import random
from typing import Any

from bus.pipeline.matcher import Matcher, Special
from bus.pipeline.routing import SubscriptionIndex
from bus.pipeline.subscription import Subscription

TYPES = ["rating_created", "send_email", "send_sms", "user.created", "a.b", "a+b", "", " send_email", "SEND_EMAIL"]
FILTERS: list[Any] = [
    *TYPES[:7],
    "bus_special_value_key",
    "bus_special_value_unknown",  # not a special: a literal
    Special.VALUE.value,
    Special.BLANK.value,
    Special.NIL.value,
    "(?-mix:^send_)",  # Ruby regex, as stored
    "(?-mix:email$)",
    "(?-mix:[)",  # not portable: compared as text
    "42",
    "true",
]
EVENT_TYPES: list[Any] = [
    *TYPES,
    "x\nsend_email",  # Ruby's ^...$ match line by line
    "send_email\n",
    "send_email\nrating_created",
    42,
    True,
    None,
    ["send_email"],
    {"a": 1},
    "bus_special_value_key",
]


def _subscriptions(rng: random.Random, n: int) -> list[Subscription]:
    subs = []
    for i in range(n):
        filters: dict[str, Any] = {}
        if rng.random() < 0.85:
            filters["bus_event_type"] = rng.choice(FILTERS)
        if rng.random() < 0.3 or not filters:
            filters["user_id"] = rng.choice(["7", Special.KEY.value, "(?-mix:^\\d+$)"])
        subs.append(Subscription(f"app{i % 3}", f"sub{i}", f"app{i % 3}_default", matcher=Matcher(filters)))
    return subs


def _event(rng: random.Random) -> dict[str, Any]:
    event: dict[str, Any] = {}
    if rng.random() < 0.95:
        event["bus_event_type"] = rng.choice(EVENT_TYPES)
    if rng.random() < 0.5:
        event["user_id"] = rng.choice(["7", 7, None, "x"])
    return event


def test_the_index_finds_what_every_matcher_finds_in_the_same_order() -> None:
    rng = random.Random(20261204)
    for _ in range(300):
        subs = _subscriptions(rng, rng.randint(0, 25))
        index = SubscriptionIndex(subs)
        for _ in range(60):
            event = _event(rng)
            expected = [s for s in subs if s.matcher.matches(event)]
            assert [s for s in index.candidates(event) if s.matcher.matches(event)] == expected, (event, subs)


def test_subscriptions_of_other_types_are_not_asked() -> None:
    subs = [
        Subscription("a", "s1", "a_default", matcher=Matcher({"bus_event_type": "send_email"})),
        Subscription("a", "s2", "a_default", matcher=Matcher({"bus_event_type": "(?-mix:^send_)"})),
        Subscription("b", "s3", "b_default", matcher=Matcher({"bus_event_type": "send_sms"})),
        Subscription("b", "s4", "b_default", matcher=Matcher({"bus_event_type": "a.b"})),  # a regex: "a" any "b"
    ]
    index = SubscriptionIndex(subs)
    assert [s.key for s in index.candidates({"bus_event_type": "send_sms"})] == ["s2", "s3", "s4"]
    assert [s.key for s in index.candidates({"bus_event_type": "nobody"})] == ["s2", "s4"]
    assert [s.key for s in index.candidates({"bus_event_type": "x\nsend_email"})] == ["s1", "s2", "s3", "s4"]
    assert [s.key for s in index.candidates({"bus_event_type": 5})] == ["s1", "s2", "s3", "s4"]
