"""``limits``: what the switchboard's circuits and rate limits cost per notification (issue 19).

``ProviderGate.admit`` (the circuits of a two-provider chain and the provider and
sender-number rates, in one script) is one round trip on its own; queued on the claim's
pipeline with the per-recipient count it adds none. The circuit's record rides on the
outcome's pipeline. Each is timed in client CPU (``process_time``) over ``--events``
notifications, against the cheapest round trip there is (a raw ``GET``) measured in the same
run, with the server's CPU per admission beside it. Target: <= 0.1 ms of CPU, at most one
round trip more.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from bench.harness import Bench
from bus.keys import Keys
from switchboard.admission import Candidate, ProviderGate, RateLimitSettings
from switchboard.circuits import Circuits, CircuitSettings
from switchboard.keys import SwitchboardKeys
from switchboard.recipient_limits import RecipientLimit, RecipientLimits

NAME = "limits"
RAW = "raw GET round trip (the floor)"
ADMIT = "admit: 2 circuits + provider and sender rates"
FOLDED = "recipient limit on the claim's pipeline (added)"
FOLDED_ADMIT = "admit and recipient limit on the claim's pipeline (added)"
RECORD = "circuit record of a success"
CHAIN = [Candidate("twilio", "+15550001111"), Candidate("vonage", "+15550002222")]
UNLIMITED = RateLimitSettings(
    twilio=1e9, vonage=1e9, twilio_sender=1e9, vonage_sender=1e9
)  # the full path, never waiting
WARM_UP = 200


def _cpu_ms(count: int, step: Callable[[int], object]) -> float:
    """Client CPU per call, in milliseconds."""
    started = time.process_time()
    for n in range(count):
        step(n)
    return (time.process_time() - started) * 1000 / count


def run(bench: Bench) -> None:
    count = bench.options.events
    client = redis.Redis.from_url(bench.url)
    keys = SwitchboardKeys(Keys())
    gate = ProviderGate(client, keys, CircuitSettings(), UNLIMITED)
    circuits = Circuits(client, keys, CircuitSettings())
    recipients = RecipientLimits(client, keys)
    limit = RecipientLimit("sms", 5, 3600)
    claim_key = keys.delivery("sms:bench")

    def claim_only(n: int) -> object:
        pipe = client.pipeline(transaction=False)
        pipe.hget(claim_key, "status")
        return pipe.execute()

    def claim_with_limit(n: int) -> object:
        pipe = client.pipeline(transaction=False)
        pipe.hget(claim_key, "status")
        recipients.queue_check(pipe, limit, f"+1415555{n % 10_000:04d}", f"sms:{n}")
        return pipe.execute()

    def claim_with_everything(n: int) -> object:
        pipe = client.pipeline(transaction=False)
        pipe.hget(claim_key, "status")
        recipients.queue_check(pipe, limit, f"+1415555{n % 10_000:04d}", f"sms:{n}")
        token = gate.queue_admit(pipe, CHAIN)
        replies = pipe.execute()
        return gate.admission(CHAIN, token, replies[-1])

    for rep in range(bench.options.repeat):
        bench.flush()
        for n in range(WARM_UP):
            client.get("bench:floor")
            gate.admit(CHAIN)
            claim_with_limit(n)
            circuits.record_success("twilio")
        raw = _cpu_ms(count, lambda n: client.get("bench:floor"))
        bench.reset_stats()
        server_before = bench.server_cpu()
        admit = _cpu_ms(count, lambda n: gate.admit(CHAIN))
        server_us = (bench.server_cpu() - server_before) * 1e6 / count
        scripts = bench.redis.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        alone = _cpu_ms(count, claim_only)
        folded = _cpu_ms(count, claim_with_limit) - alone
        folded_admit = _cpu_ms(count, claim_with_everything) - alone
        record = _cpu_ms(count, lambda n: circuits.record_success("twilio"))
        details = {"notifications": count, "server_us_per_admit": server_us, "evalsha_per_admit": scripts / count}
        bench.report.add(NAME, RAW, raw, "ms CPU", higher_is_better=False)
        bench.report.add(NAME, ADMIT, admit, "ms CPU", higher_is_better=False, details=details, target="<= 0.1 ms")
        bench.report.add(NAME, FOLDED, max(folded, 0.0), "ms CPU", higher_is_better=False)
        bench.report.add(
            NAME, FOLDED_ADMIT, max(folded_admit, 0.0), "ms CPU", higher_is_better=False, target="<= 0.1 ms"
        )
        bench.report.add(NAME, RECORD, record, "ms CPU", higher_is_better=False)
        bench.log(
            f"limits {rep + 1}/{bench.options.repeat}: admit {admit * 1000:.0f} us CPU ({scripts / count:.2f} "
            f"round trips, server {server_us:.0f} us), raw GET {raw * 1000:.0f} us, recipient limit "
            f"+{folded * 1000:.0f} us, both on the claim's pipeline +{folded_admit * 1000:.0f} us, "
            f"record {record * 1000:.0f} us"
        )
    metrics = bench.report.metrics
    bench.report.compare(metrics[f"{NAME}/{ADMIT}"], metrics[f"{NAME}/{RAW}"], "raw round trip")
    client.close()
    bench.flush()
