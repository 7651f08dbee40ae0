"""Circuits, provider rate limits and recipient limits on Redis Cluster: each step stays in one slot."""

from __future__ import annotations

import redis

from bus.keys import Keys
from switchboard.admission import Candidate, ProviderGate, RateLimitSettings
from switchboard.circuits import Circuits, CircuitSettings
from switchboard.errors import TransientProviderError
from switchboard.keys import SwitchboardKeys
from switchboard.recipient_limits import RecipientLimit, RecipientLimits

KEYS = SwitchboardKeys(Keys())


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
