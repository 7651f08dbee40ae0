"""The driver's fast encoding produces exactly the bytes of the plain, merge-then-encode way."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bus.pipeline.driver import drive, driven_attributes, matching
from bus.pipeline.envelope import encode_attributes, encode_job
from bus.pipeline.matcher import Matcher
from bus.pipeline.subscription import Subscription

SUBS = [
    Subscription("app", "key", "app_default", "::QueueBus::Rider", Matcher({"bus_event_type": "x"})),
    Subscription("é-app", 'k"ey\n', "é_q", "Some\u2028Class", Matcher({"bus_event_type": "x"})),
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(["a", "b", "é", "bus_id", "bus_driven_at", "bus_rider_queue", "\u2028", '"', "bus_class_proxy"])


def slow(attributes: dict[str, Any], now: int) -> list[tuple[str, str]]:
    return [
        (sub.queue_name, encode_job(encode_attributes(driven_attributes(attributes, sub, now))))
        for sub in matching(attributes, SUBS)
    ]


@settings(max_examples=300, deadline=None)
@given(extra=st.dictionaries(keys, json_values, max_size=5), proxy_last=st.booleans())
def test_fast_drive_is_byte_identical(extra: dict[str, Any], proxy_last: bool) -> None:
    event: dict[str, Any] = {"bus_event_type": "x", **extra}
    event.pop("bus_class_proxy", None)
    if proxy_last:
        event["bus_class_proxy"] = "QueueBus::Driver"
    assert drive(event, SUBS, 1795823508) == slow(event, 1795823508)
