"""Circuits and provider rate limits in Redis: shared by every process, one script per decision."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest
import redis

from bus.keys import Keys
from switchboard.admission import Candidate, ProviderGate, RateLimitSettings
from switchboard.circuits import Circuits, CircuitSettings, failure_reason
from switchboard.errors import ProviderConfigurationError, TransientProviderError
from switchboard.keys import SwitchboardKeys

KEYS = SwitchboardKeys(Keys())
CHAIN = [Candidate("twilio"), Candidate("vonage")]
SETTINGS = CircuitSettings(failures=3, failure_rate=0.5, window=60, min_requests=10, cooldown=30, probe_timeout=20)
UNAVAILABLE = TransientProviderError("Twilio answered 503 for +1415*****23", status=503, code="20503")


class Clock:
    """Time the test moves by hand, shared by every 'process' of a test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


Process = tuple[Circuits, ProviderGate]


@pytest.fixture
def process(redis_url: str, clock: Clock) -> Callable[..., Process]:
    """A worker process's view: its own connection, the shared Redis."""

    def make(rates: RateLimitSettings | None = None, settings: CircuitSettings = SETTINGS) -> Process:
        client = redis.Redis.from_url(redis_url)
        return (
            Circuits(client, KEYS, settings, clock),
            ProviderGate(client, KEYS, settings, rates or RateLimitSettings(), clock),
        )

    return make


def _open_twilio(circuits: Circuits) -> None:
    for _ in range(SETTINGS.failures):
        circuits.record_failure("twilio", UNAVAILABLE)


def test_consecutive_failures_open_the_circuit_once_for_every_process(
    process: Callable[..., Process], caplog: pytest.LogCaptureFixture
) -> None:
    (one, gate_one), (two, gate_two) = process(), process()
    assert one.record_failure("twilio", UNAVAILABLE) is None
    assert two.record_failure("twilio", UNAVAILABLE) is None
    with caplog.at_level(logging.INFO, logger="switchboard.circuits"):
        change = one.record_failure("twilio", UNAVAILABLE)
        assert one.record_failure("twilio", UNAVAILABLE) is None  # already open: no second change
    assert change is not None and (change.provider, change.state) == ("twilio", "opened")
    assert change.reason == "TransientProviderError status 503 code 20503"  # never the text: it names a recipient
    assert caplog.text.count("OPENED") == 1
    for gate in (gate_one, gate_two):
        admission = gate.admit(CHAIN)
        assert (admission.verdict, admission.provider, admission.skipped) == ("send", "vonage", ("twilio",))


def test_a_success_resets_the_run_of_failures(process: Callable[..., Process]) -> None:
    circuits, gate = process(settings=CircuitSettings(failures=3, failure_rate=0.9, min_requests=10))
    for _ in range(5):
        circuits.record_failure("twilio", UNAVAILABLE)
        circuits.record_failure("twilio", UNAVAILABLE)
        circuits.record_success("twilio")
    assert circuits.states(["twilio"])[0].state == "closed"
    assert gate.admit(CHAIN).provider == "twilio"


def test_rejected_credentials_open_it_at_once(process: Callable[..., Process]) -> None:
    circuits, gate = process()
    change = circuits.record_failure("twilio", ProviderConfigurationError("Twilio answered 401", status=401))
    assert change is not None and change.state == "opened"
    assert gate.admit(CHAIN).provider == "vonage"


def test_a_failure_rate_over_the_window_opens_it(process: Callable[..., Process], clock: Clock) -> None:
    circuits, _ = process(settings=CircuitSettings(failures=100, failure_rate=0.5, window=60, min_requests=10))
    changes = []
    for n in range(12):  # fail, fail, ok, fail, fail, ok...: never 3 in a row, 2/3 failing
        clock.now += 1
        if n % 3 == 2:
            changes.append(circuits.record_success("twilio"))
        else:
            changes.append(circuits.record_failure("twilio", UNAVAILABLE))
    opened = [n for n, change in enumerate(changes) if change is not None]
    assert opened == [9]  # the 10th send reaches min_requests with 7 of 10 failed


def test_old_failures_age_out_of_the_window(process: Callable[..., Process], clock: Clock) -> None:
    circuits, _ = process(settings=CircuitSettings(failures=100, failure_rate=0.5, window=60, min_requests=10))
    for _ in range(8):
        circuits.record_success("twilio")
        circuits.record_failure("twilio", UNAVAILABLE)
    assert circuits.states(["twilio"])[0].state == "closed"  # half failed: not more than failure_rate
    clock.now += 180  # two windows later
    for _ in range(9):
        circuits.record_success("twilio")
    assert circuits.record_failure("twilio", UNAVAILABLE) is None
    assert circuits.states(["twilio"])[0].state == "closed"


def test_after_the_cooldown_exactly_one_send_probes_and_its_success_closes(
    process: Callable[..., Process], clock: Clock
) -> None:
    (one, gate_one), (two, gate_two) = process(), process()
    _open_twilio(one)
    clock.now += SETTINGS.cooldown - 1
    assert gate_one.admit(CHAIN).provider == "vonage"
    clock.now += 1
    probe = gate_one.admit(CHAIN)
    assert (probe.verdict, probe.provider) == ("probe", "twilio")
    assert probe.change is not None and probe.change.state == "half_open"
    assert gate_two.admit(CHAIN).provider == "vonage"  # the other process does not probe too
    assert two.record_success("twilio") is None  # a send admitted before the circuit opened: ignored
    change = one.record_success("twilio", probe.probe)
    assert change is not None and change.state == "closed"
    assert gate_two.admit(CHAIN).provider == "twilio"


def test_a_failed_probe_opens_it_again_for_another_cooldown(process: Callable[..., Process], clock: Clock) -> None:
    circuits, gate = process()
    _open_twilio(circuits)
    clock.now += SETTINGS.cooldown
    probe = gate.admit(CHAIN)
    change = circuits.record_failure("twilio", UNAVAILABLE, probe.probe)
    assert change is not None and change.state == "opened"
    clock.now += SETTINGS.cooldown - 1
    assert gate.admit(CHAIN).provider == "vonage"
    clock.now += 1
    assert gate.admit(CHAIN).verdict == "probe"


def test_a_probe_whose_worker_died_frees_its_permit(process: Callable[..., Process], clock: Clock) -> None:
    circuits, gate = process()
    _open_twilio(circuits)
    clock.now += SETTINGS.cooldown
    assert gate.admit(CHAIN).verdict == "probe"  # its worker dies: no outcome recorded
    clock.now += SETTINGS.probe_timeout - 1
    assert gate.admit(CHAIN).provider == "vonage"
    clock.now += 1
    assert gate.admit(CHAIN).verdict == "probe"


def test_racing_processes_get_one_probe(process: Callable[..., Process], clock: Clock) -> None:
    circuits, _ = process()
    _open_twilio(circuits)
    clock.now += SETTINGS.cooldown
    gates = [process()[1] for _ in range(12)]
    start = threading.Barrier(len(gates))
    verdicts: list[str] = []

    def admit(gate: ProviderGate) -> None:
        start.wait()
        verdicts.append(gate.admit([Candidate("twilio")]).verdict)

    threads = [threading.Thread(target=admit, args=(gate,)) for gate in gates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(verdicts) == ["open"] * 11 + ["probe"]


def test_every_circuit_open_says_when_the_first_may_be_probed(process: Callable[..., Process], clock: Clock) -> None:
    circuits, gate = process()
    _open_twilio(circuits)
    clock.now += 10
    for _ in range(SETTINGS.failures):
        circuits.record_failure("vonage", UNAVAILABLE)
    admission = gate.admit(CHAIN)
    assert (admission.verdict, admission.provider, admission.go) == ("open", None, False)
    assert admission.wait == pytest.approx(SETTINGS.cooldown - 10)
    assert admission.skipped == ("twilio", "vonage")


def test_states_for_the_dashboard(process: Callable[..., Process], clock: Clock) -> None:
    circuits, _ = process()
    circuits.record_success("vonage")
    _open_twilio(circuits)
    twilio, vonage = circuits.states(["twilio", "vonage"])
    assert (twilio.state, twilio.failures, twilio.reopens_at) == ("open", 3, clock.now + SETTINGS.cooldown)
    assert twilio.reason == failure_reason(UNAVAILABLE)
    assert (vonage.state, vonage.recent_sends, vonage.recent_failures, vonage.opened_at) == ("closed", 1, 0, None)
    circuits.reset("twilio")
    assert circuits.states(["twilio"])[0].state == "closed"


def test_the_server_clock_is_used_when_no_clock_is_given(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    circuits = Circuits(client, KEYS, SETTINGS)
    _open_twilio(circuits)
    server_now = float(".".join(str(part) for part in client.time()))
    [state] = circuits.states(["twilio"])
    assert state.reopens_at == pytest.approx(server_now + SETTINGS.cooldown, abs=2)
    assert ProviderGate(client, KEYS, SETTINGS, RateLimitSettings()).admit(CHAIN).provider == "vonage"


# --- provider rate limits ---------------------------------------------------------------


def test_a_provider_rate_spaces_sends_evenly(process: Callable[..., Process], clock: Clock) -> None:
    _, gate = process(RateLimitSettings(twilio=10))
    assert gate.admit(CHAIN).verdict == "send"
    wait = gate.admit(CHAIN)
    assert (wait.verdict, wait.provider) == ("wait", "twilio")  # no failover for our own pacing
    assert wait.wait == pytest.approx(0.1)
    clock.now += 0.1
    assert gate.admit(CHAIN).verdict == "send"


def test_burst_lets_that_many_go_at_once(process: Callable[..., Process]) -> None:
    _, gate = process(RateLimitSettings(twilio=2, burst=3))
    assert [gate.admit(CHAIN).verdict for _ in range(4)] == ["send", "send", "send", "wait"]


def test_each_sender_number_has_its_own_rate(process: Callable[..., Process]) -> None:
    _, gate = process(RateLimitSettings(twilio_sender=1))
    first, second = [Candidate("twilio", "+15550001111")], [Candidate("twilio", "+15550002222")]
    assert gate.admit(first).verdict == "send"
    assert gate.admit(first).verdict == "wait"
    assert gate.admit(second).verdict == "send"


def test_processes_sharing_a_rate_never_exceed_it(process: Callable[..., Process], clock: Clock) -> None:
    gates = [process(RateLimitSettings(twilio=50))[1] for _ in range(2)]
    sent: list[float] = []
    for step in range(3000):  # three seconds in steps of 1 ms, both processes asking every step
        clock.now += 0.001
        for gate in gates[step % 2 :] + gates[: step % 2]:
            if gate.admit([Candidate("twilio")]).go:
                sent.append(clock.now)
    busiest = max(sum(1 for t in sent if start <= t < start + 1) for start in sent)
    assert busiest <= 51  # rate + burst
    assert len(sent) >= 140  # and it does send (sends are checked only every millisecond here)


def test_a_send_that_must_wait_takes_neither_a_slot_nor_the_probe(
    process: Callable[..., Process], clock: Clock
) -> None:
    circuits, gate = process(RateLimitSettings(twilio=0.02))  # one send per 50 s
    assert gate.admit(CHAIN).verdict == "send"
    _open_twilio(circuits)
    clock.now += SETTINGS.cooldown  # the circuit may be probed, the rate slot is 20 s away
    waiting = gate.admit([Candidate("twilio")])
    assert (waiting.verdict, waiting.probe) == ("wait", None)
    assert waiting.wait == pytest.approx(20)
    assert circuits.states(["twilio"])[0].state == "open"  # no probe taken
    clock.now += 20
    assert gate.admit([Candidate("twilio")]).verdict == "probe"


def test_admission_is_one_round_trip(process: Callable[..., Process], redis_url: str) -> None:
    _, gate = process(RateLimitSettings(twilio=100, twilio_sender=1))
    chain = [Candidate("twilio", "+15550001111"), Candidate("vonage")]
    gate.admit(chain)  # loads the script
    observer, marker = redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)
    marker.ping()  # connected before the monitor starts
    with observer.monitor() as monitor:  # type: ignore[no-untyped-call]
        gate.admit(chain)
        marker.echo("done")
        seen = []
        while (command := monitor.next_command())["command"] != "ECHO done":
            if command["client_type"] != "lua":  # what the script itself calls runs inside that one command
                seen.append(command["command"].split()[0])
    assert seen == ["EVALSHA"]


def test_the_admission_and_a_success_can_ride_on_pipelines_of_the_pipeline(
    process: Callable[..., Process], r: redis.Redis
) -> None:
    circuits, gate = process(RateLimitSettings(twilio=1))
    pipe = r.pipeline(transaction=False)
    pipe.get("claim")
    token = gate.queue_admit(pipe, CHAIN)
    admission = gate.admission(CHAIN, token, pipe.execute()[-1])
    assert (admission.verdict, admission.provider) == ("send", "twilio")
    assert gate.admit(CHAIN).verdict == "wait"  # the queued admission took the slot
    circuits.record_failure("twilio", UNAVAILABLE)
    circuits.record_failure("twilio", UNAVAILABLE)
    pipe = r.pipeline(transaction=False)
    circuits.queue_success(pipe, "twilio")
    pipe.execute()
    assert circuits.states(["twilio"])[0].failures == 0
