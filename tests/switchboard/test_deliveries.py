"""Delivery records and their index on a real server, with time passed in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bus import Bus
from switchboard.deliveries import Claim, Deliveries, Status
from switchboard.keys import SwitchboardKeys


@pytest.fixture
def deliveries(bus: Bus) -> Iterator[Deliveries]:
    yield Deliveries(bus.redis, SwitchboardKeys(bus.keys), retention=10, stale_after=5.0)


def test_a_claim_indexes_the_record_by_creation_time(deliveries: Deliveries) -> None:
    assert deliveries.claim("d1", 1000.0, {"channel": "email"}) is Claim.NEW
    assert deliveries.redis.zscore(deliveries.keys.deliveries, "d1") == 1000.0
    assert deliveries.claim("d1", 1001.0, {"channel": "email"}) is Claim.BUSY
    assert deliveries.redis.zscore(deliveries.keys.deliveries, "d1") == 1000.0


def test_an_id_used_again_after_its_record_expired_is_indexed_again(deliveries: Deliveries) -> None:
    """The record expires on its own; its index entry lingers until the next trim."""
    deliveries.claim("d1", 1000.0, {"channel": "email"})
    deliveries.update("d1", 1000.5, status=Status.SENT)
    deliveries.redis.delete(deliveries.keys.delivery("d1"))  # what EXPIRE does after retention

    assert deliveries.claim("d1", 1020.0, {"channel": "email"}) is Claim.NEW

    assert deliveries.redis.zscore(deliveries.keys.deliveries, "d1") == 1020.0
    assert [d.id for d in deliveries.search().deliveries] == ["d1"]
