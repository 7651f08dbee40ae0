"""Failover, circuits and provider rate limits shared by two ``switchboard run`` worker processes.

The emulators run in the test process; the workers are real processes with real SDKs, and
share nothing but Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus import Bus
from switchboard.app import Switchboard
from switchboard.client import send_sms
from switchboard.settings import load_switchboard_settings
from tests.support.emulators import TwilioEmulator, VonageEmulator
from tests.support.polling import wait_for
from tests.support.tls import TlsFiles

ROOT = Path(__file__).resolve().parents[2]

Fleet = Callable[..., Switchboard]


def settings_text(twilio: TwilioEmulator, vonage: VonageEmulator, certificates: TlsFiles, extra: str) -> str:
    return f"""
[bus.worker]
heartbeat_interval = 0.2
retry_poll_interval = 0.05
idle_wait = 0.1
batch_size = 1

[switchboard]
concurrency = 4
templates_dir = "{ROOT / "templates"}"
senders = ["Acme <no-reply@acme.example>"]

[switchboard.twilio]
account_sid = "{twilio.account_sid}"
auth_token = "{twilio.auth_token}"
from_number = "+15550001111"
base_url = "{twilio.url}"
timeout = 2

[switchboard.vonage]
api_key = "{vonage.api_key}"
api_secret = "{vonage.api_secret}"
from_number = "+15550002222"
base_url = "{vonage.url}"
ca_file = "{certificates.ca_file}"
timeout = 2

[switchboard.retry]
max_retries = 3
base_delay = 0.05
max_delay = 0.2
{extra}
"""


@pytest.fixture
def fleet(
    redis_url: str,
    tmp_path: Path,
    twilio_emulator: TwilioEmulator,
    vonage_emulator: VonageEmulator,
    certificates: TlsFiles,
) -> Iterator[Fleet]:
    """Two worker processes on these settings, and a Switchboard in the test to publish and read."""
    processes: list[subprocess.Popen[bytes]] = []
    boards: list[Switchboard] = []

    def start(extra: str) -> Switchboard:
        path = tmp_path / "settings.toml"
        path.write_text(settings_text(twilio_emulator, vonage_emulator, certificates, extra))
        board = Switchboard(Bus(redis_url), load_switchboard_settings(path, environ={}))
        board.bus.subscribe_all()  # before the first publish: the workers store the same
        boards.append(board)
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        for n in range(2):
            log = open(tmp_path / f"worker-{n}.log", "wb")  # noqa: SIM115 - handed to the child
            command = [
                sys.executable,
                "-m",
                "switchboard.cli",
                "run",
                "--settings",
                str(path),
                "--redis-url",
                redis_url,
            ]
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log))
        return board

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for board in boards:
        board.close()


def logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("worker-*.log")))


def all_sent(board: Switchboard, ids: list[str], tmp_path: Path, timeout: float = 30.0) -> list[dict[str, str]]:
    def done() -> list[dict[str, str]] | None:
        records = [board.deliveries.get(f"sms:{i}") for i in ids]
        fields = [r.fields for r in records if r is not None]
        return fields if len(fields) == len(ids) and all(f["status"] == "accepted" for f in fields) else None

    return wait_for(done, timeout=timeout, message=lambda: f"not all sent; workers said:\n{logs(tmp_path)[-3000:]}")


def test_the_primary_failing_fails_over_opens_once_for_both_processes_and_recovers(
    fleet: Fleet, twilio_emulator: TwilioEmulator, vonage_emulator: VonageEmulator, tmp_path: Path
) -> None:
    board = fleet(
        '[switchboard.sms]\nproviders = ["twilio", "vonage"]\nrecipient_limit = 0\n'
        "[switchboard.circuit]\nfailures = 3\ncooldown = 3\nmin_requests = 1000\n"
    )
    twilio_emulator.script(*[twilio_emulator.error(503) for _ in range(50)])
    for n in range(4):  # one at a time: the 3rd failure opens the circuit, the 4th send skips it
        [record] = all_sent(board, [send_sms(bus=board.bus, to=f"+1415555{n:04d}", body="Hello")], tmp_path)
        assert record["provider"] == "vonage"  # it arrived through the secondary
    failed_on_primary = len(twilio_emulator.requests_to())
    assert failed_on_primary == 3
    assert board.circuits.states(["twilio"])[0].state == "open"

    # Open for both processes: the primary sees no more requests, whichever worker sends.
    processed = {k: int(board.bus.redis.get(k) or 0) for k in board.bus.redis.keys("resque:stat:processed:*")}
    vonage_emulator.latency = 0.2  # sends that take time: neither worker can take them all
    later = [send_sms(bus=board.bus, to=f"+1415556{n:04d}", body="Hello") for n in range(20)]
    records = all_sent(board, later, tmp_path)
    vonage_emulator.latency = 0.0
    assert {r["provider"] for r in records} == {"vonage"}
    assert len(twilio_emulator.requests_to()) == failed_on_primary
    now = {k: int(board.bus.redis.get(k) or 0) for k in board.bus.redis.keys("resque:stat:processed:*")}
    grew = [k for k in now if now[k] > processed.get(k, 0)]
    assert len(grew) == 2, "both worker processes sent while the circuit was open"
    assert logs(tmp_path).count("circuit of twilio OPENED") == 1  # logged once, by the one that opened it

    # After the cool-down one send probes the primary; it answers, the circuit closes for both.
    twilio_emulator.reset()
    wait_for(lambda: board.circuits.states(["twilio"])[0].reopens_at is not None, timeout=1)
    reopens = board.circuits.states(["twilio"])[0].reopens_at or 0
    wait_for(lambda: board.bus.redis.time()[0] >= reopens, timeout=5)
    recovered = [send_sms(bus=board.bus, to=f"+1415557{n:04d}", body="Hello") for n in range(6)]
    records = all_sent(board, recovered, tmp_path)
    assert "twilio" in [r["provider"] for r in records]  # the probe (its peers skip it while it runs)
    assert board.circuits.states(["twilio"])[0].state == "closed"
    after = [send_sms(bus=board.bus, to=f"+1415558{n:04d}", body="Hello") for n in range(6)]
    assert {r["provider"] for r in all_sent(board, after, tmp_path)} == {"twilio"}
    assert logs(tmp_path).count("circuit of twilio closed") == 1


def test_a_bad_recipient_on_the_primary_does_not_fail_over(
    fleet: Fleet, twilio_emulator: TwilioEmulator, vonage_emulator: VonageEmulator, tmp_path: Path
) -> None:
    board = fleet('[switchboard.sms]\nproviders = ["twilio", "vonage"]\n')
    twilio_emulator.reject("+14155550999", 21211)
    bus_id = send_sms(bus=board.bus, to="+14155550999", body="Hello")

    def decided() -> dict[str, str] | None:
        record = board.deliveries.get(f"sms:{bus_id}")
        return record.fields if record is not None and record.status == "failed" else None

    record = wait_for(decided, timeout=20, message=lambda: logs(tmp_path)[-3000:])
    assert (record["reason"], record["provider"]) == ("recipient", "twilio")
    assert len(twilio_emulator.requests_to()) == 1 and vonage_emulator.requests_to() == []


def test_two_processes_keep_a_shared_provider_rate_and_every_message_arrives(
    fleet: Fleet, twilio_emulator: TwilioEmulator, tmp_path: Path
) -> None:
    board = fleet(
        '[switchboard.sms]\nproviders = ["twilio"]\nrecipient_limit = 0\n[switchboard.rate_limits]\ntwilio = 50\n'
    )
    ids = [send_sms(bus=board.bus, to=f"+1415558{n:04d}", body="Hello") for n in range(500)]
    all_sent(board, ids, tmp_path, timeout=60)
    arrivals = sorted(r.at for r in twilio_emulator.requests_to())
    assert len(arrivals) == 500
    # In any one second, at most the rate plus the one send a window edge lets in.
    busiest = max(sum(1 for t in arrivals[i:] if t - start < 1.0) for i, start in enumerate(arrivals))
    assert busiest <= 51, busiest
    assert arrivals[-1] - arrivals[0] >= 499 / 50 - 0.1
    assert board.sender.waits.totals()["twilio"] > 0
