"""Keys that must change together with a queue sit in its cluster slot, whatever its name."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from bus.keys import Keys, slot_tag


@pytest.mark.parametrize("namespace", ["resque", "{tenant}", ""])
@pytest.mark.parametrize("queue", ["app_default", "a{b}c", "a{b}c{d}", "x{", "x{{y}"])
def test_every_companion_of_a_queue_shares_its_slot(namespace: str, queue: str) -> None:
    keys = Keys(namespace)
    slot = key_slot(keys.queue(queue).encode())
    companions = [
        keys.inflight(queue, "host:1:w"),
        keys.retries(queue),
        keys.crashes(queue),
        keys.replicated_mark(keys.queue(queue)),
    ]
    assert {key_slot(c.encode()) for c in companions} == {slot}, companions


def test_a_delayed_timestamp_and_its_movers_share_a_slot() -> None:
    keys = Keys("{tenant}")
    slot = key_slot(keys.delayed(1700000000).encode())
    assert key_slot(keys.delayed_moving(1700000000, "s1").encode()) == slot
    assert key_slot(keys.delayed_movers(1700000000).encode()) == slot


def test_a_plain_key_is_wrapped_whole_and_a_tagged_key_lends_its_tag() -> None:
    assert slot_tag("resque:queue:app_default") == "{resque:queue:app_default}"
    assert slot_tag("resque:queue:a{b}c") == "{b}"
    assert slot_tag("resque:queue:x{") == "{resque:queue:x{}"
