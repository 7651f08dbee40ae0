"""Keys that must change together with a queue sit in its cluster slot, whatever its name."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from bus.keys import Keys, hashed_part

QUEUES = ["app_default", "other_default", "a{b}c", "x{b}y", "a{b}c{d}", "x{", "x{{y}"]


def companions(keys: Keys, queue: str) -> list[str]:
    return [
        keys.inflight(queue, "host:1:w"),
        keys.retries(queue),
        keys.crashes(queue),
        keys.replicated_mark(keys.queue(queue)),
    ]


@pytest.mark.parametrize("namespace", ["resque", "{tenant}", ""])
@pytest.mark.parametrize("queue", QUEUES)
def test_every_companion_of_a_queue_shares_its_slot(namespace: str, queue: str) -> None:
    keys = Keys(namespace)
    slot = key_slot(keys.queue(queue).encode())
    assert {key_slot(c.encode()) for c in companions(keys, queue)} == {slot}, companions(keys, queue)


@pytest.mark.parametrize("namespace", ["resque", "{tenant}", ""])
def test_companions_of_different_queues_are_different_keys(namespace: str) -> None:
    keys = Keys(namespace)
    every = [c for queue in QUEUES for c in companions(keys, queue)]
    assert len(set(every)) == len(every)


def test_a_plain_queue_keeps_its_full_key_as_the_hash_tag() -> None:
    """The names running workers already use: a rename would strand their in-flight jobs."""
    assert Keys().inflight("app_default", "w") == "resque:inflight:{resque:queue:app_default}:w"
    assert Keys("{tenant}").retries("app_default") == "{tenant}:bus:retry:{{tenant}:queue:app_default}"
    assert Keys().crashes("a{b}c") == "resque:bus:crashes:resque:queue:a{b}c"


def test_a_delayed_timestamp_and_its_movers_share_a_slot() -> None:
    for keys in (Keys(), Keys("{tenant}")):
        slot = key_slot(keys.delayed(1700000000).encode())
        assert key_slot(keys.delayed_moving(1700000000, "s1").encode()) == slot
        assert key_slot(keys.delayed_movers(1700000000).encode()) == slot
        assert keys.delayed_movers(1700000000) != keys.delayed_movers(1700000001)


def test_hashed_part_follows_redis() -> None:
    assert hashed_part("resque:queue:a{b}c") == "b"
    assert hashed_part("{}x{y}") == "{}x{y}"
    assert hashed_part("a{{b}") == "{b"
    assert hashed_part("a}b{c") == "a}b{c"
