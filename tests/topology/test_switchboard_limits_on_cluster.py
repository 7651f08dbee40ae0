"""Circuits, provider rate limits and recipient limits on Redis Cluster: each step stays in one slot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bus import Bus
from bus.keys import Keys
from bus.settings import BusSettings
from switchboard.admission import Candidate, ProviderGate, RateLimitSettings
from switchboard.app import Switchboard
from switchboard.circuits import Circuits, CircuitSettings
from switchboard.client import send_sms
from switchboard.errors import TransientProviderError
from switchboard.keys import SwitchboardKeys
from switchboard.recipient_limits import RecipientLimit, RecipientLimits
from switchboard.settings import SwitchboardSettings
from tests.bus.helpers import drain
from tests.support.emulators import TwilioEmulator
from tests.support.topologies import RedisCluster

KEYS = SwitchboardKeys(Keys())
ROOT = Path(__file__).resolve().parents[2]


def test_admission_circuits_and_recipient_limits_on_a_cluster(cluster_client: redis.cluster.RedisCluster) -> None:
    settings = CircuitSettings(failures=2)
    circuits = Circuits(cluster_client, KEYS, settings)
    gate = ProviderGate(cluster_client, KEYS, settings, RateLimitSettings(twilio=1000, twilio_sender=1))
    chain = [Candidate("twilio", "+15550001111"), Candidate("vonage")]
    assert gate.admit(chain).provider == "twilio"
    assert gate.admit(chain).verdict == "wait"  # the sender number's rate, in the same slot
    for _ in range(2):
        circuits.record_failure("twilio", TransientProviderError("503", status=503))
    assert gate.admit(chain).provider == "vonage"
    assert [s.state for s in circuits.states(["twilio", "vonage"])] == ["open", "closed"]

    limits = RecipientLimits(cluster_client, KEYS)
    limit = RecipientLimit("sms", count=1, window=60)
    numbers = ["+14155550101", "+14155550102", "+14155550103"]  # keys on different shards
    assert all(c.allowed for c in limits.check(limit, numbers, "sms:a"))
    assert not any(c.allowed for c in limits.check(limit, numbers, "sms:b"))
    assert len(limits.refused(limit)) == 3


def test_the_send_path_with_circuits_and_limits_on_a_cluster(
    cluster: RedisCluster, twilio_emulator: TwilioEmulator
) -> None:
    """The claim's round trip (record, suppressions, channel states, admission, recipient counts)
    spans several slots: it still works; a 503 opens the circuit, the retry probes and closes it."""
    b = Bus(settings=BusSettings(redis_url=cluster.url))
    b.redis.flushall(target_nodes=b.redis.PRIMARIES)
    settings = SwitchboardSettings.from_table(
        {
            "templates_dir": str(ROOT / "templates"),
            "twilio": {
                "account_sid": twilio_emulator.account_sid,
                "auth_token": twilio_emulator.auth_token,
                "from_number": "+15550001111",
                "base_url": twilio_emulator.url,
                "timeout": 2,
            },
            "sms": {"recipient_limit": 1},
            "rate_limits": {"twilio": 1000},
            "circuit": {"failures": 1, "cooldown": 0.2},
            "retry": {"base_delay": 0.05, "max_delay": 0.5},
        }
    )
    board = Switchboard(b, settings)
    b.subscribe_all()
    try:
        twilio_emulator.script(twilio_emulator.error(503))
        first = send_sms(bus=b, to="+14155550123", body="one")
        second = send_sms(bus=b, to="+14155550123", body="two")
        drain(b, ["bus_incoming", *b.app_queues()])
    finally:
        board.close()
    records = [board.deliveries.get(f"sms:{i}") for i in (first, second)]
    assert sorted(r.status for r in records if r is not None) == ["accepted", "rate_limited"]
    assert len(twilio_emulator.requests_to()) == 2  # the 503, then the probe after the cooldown
    assert board.circuits.states(["twilio"])[0].state == "closed"


@pytest.fixture
def twilio_emulator() -> Iterator[TwilioEmulator]:
    with TwilioEmulator() as emulator:
        yield emulator
