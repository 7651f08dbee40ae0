"""The send path with a chain of providers and the limits: event -> bus -> worker -> real SDKs -> emulators.

SMS goes through Twilio then Vonage (the real SDKs, each against its emulator).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from switchboard.app import Switchboard
from switchboard.client import send_sms
from switchboard.privacy import recipient_digest
from tests.support.emulators import TwilioEmulator, VonageEmulator
from tests.support.polling import wait_for
from tests.support.tls import TlsFiles
from tests.switchboard.boards import Make, board_maker, run

ROOT = Path(__file__).resolve().parents[2]
NUMBER = "+14155550123"
SHIPPED = {"order_number": "A-1", "carrier": "UPS", "tracking_url": "https://acme.example/t/A-1"}


def sms_sections(twilio: TwilioEmulator, vonage: VonageEmulator, certificates: TlsFiles) -> dict[str, Any]:
    """The ``[switchboard]`` tables of an SMS channel that sends through Twilio, then Vonage."""
    return {
        "twilio": {
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "from_number": "+15550001111",
            "base_url": twilio.url,
            "timeout": 1,
        },
        "vonage": {
            "api_key": vonage.api_key,
            "api_secret": vonage.api_secret,
            "from_number": "+15550002222",
            "base_url": vonage.url,
            "ca_file": str(certificates.ca_file),
            "timeout": 1,
        },
        "sms": {"providers": ["twilio", "vonage"], "recipient_limit": 0},
        "retry": {"max_retries": 2, "base_delay": 0.05, "max_delay": 0.2, "configuration_delay": 0.1},
        "circuit": {"failures": 3, "cooldown": 0.5, "min_requests": 100},
    }


@pytest.fixture
def make_board(
    redis_url: str, twilio_emulator: TwilioEmulator, vonage_emulator: VonageEmulator, certificates: TlsFiles
) -> Iterator[Make]:
    def base() -> dict[str, Any]:
        return sms_sections(twilio_emulator, vonage_emulator, certificates)

    with board_maker(redis_url, base, "Acme <no-reply@acme.example>") as make:
        yield make


def listen(board: Switchboard, *event_types: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    app = board.bus.dispatch("watcher")

    def keep(attributes: dict[str, Any]) -> None:
        seen.append({"type": attributes["bus_event_type"], **attributes})

    for event_type in event_types:
        app.add(event_type, keep)
    board.bus.subscribe_all()
    return seen


def record_of(board: Switchboard, bus_id: str) -> dict[str, str]:
    record = board.deliveries.get(f"sms:{bus_id}")
    assert record is not None
    return record.fields


def test_a_503_from_the_primary_arrives_through_the_secondary_in_the_same_attempt(
    make_board: Make, twilio_emulator: TwilioEmulator, vonage_emulator: VonageEmulator
) -> None:
    board = make_board()
    seen = listen(board, "sms_sent")
    twilio_emulator.script(twilio_emulator.error(503))
    bus_id = send_sms(bus=board.bus, to=NUMBER, body="Hello")
    run(board)

    assert len(twilio_emulator.requests_to()) == 1
    [request] = vonage_emulator.requests_to()
    assert request.form_value("to") == "14155550123"
    record = record_of(board, bus_id)
    assert (record["status"], record["provider"], record["attempts"]) == ("accepted", "vonage", "1")
    [event] = seen
    assert event["provider"] == "vonage"
    assert [(t["provider"], t["outcome"]) for t in event["tries"]] == [("twilio", "transient"), ("vonage", "sent")]
    assert event["tries"][0]["code"] == "20503"
    timeline = board.deliveries.timeline(f"sms:{bus_id}")
    assert [t["provider"] for t in timeline[-1]["tries"]] == ["twilio", "vonage"]


def test_a_bad_recipient_on_the_primary_does_not_fail_over(
    make_board: Make, twilio_emulator: TwilioEmulator, vonage_emulator: VonageEmulator
) -> None:
    board = make_board()
    twilio_emulator.reject("+14155550999", 21211)
    bus_id = send_sms(bus=board.bus, to="+14155550999", body="Hello")
    run(board)
    assert len(twilio_emulator.requests_to()) == 1 and vonage_emulator.requests_to() == []
    record = record_of(board, bus_id)
    assert (record["status"], record["reason"], record["provider"]) == ("failed", "recipient", "twilio")
    assert "4155550999" not in record["tries"]  # the error is masked in the tries too
    assert board.circuits.states(["twilio"])[0].failures == 0  # the provider answered: it works


def test_a_timeout_does_not_fail_over_unless_the_channel_says_so(
    make_board: Make, twilio_emulator: TwilioEmulator, vonage_emulator: VonageEmulator
) -> None:
    board = make_board(retry={"ambiguous_retries": 0})
    twilio_emulator.script(twilio_emulator.drop())
    bus_id = send_sms(bus=board.bus, to=NUMBER, body="once")
    run(board)
    assert vonage_emulator.requests_to() == []
    assert record_of(board, bus_id)["status"] == "unknown"

    board = make_board(sms={"failover_on_timeout": True})
    twilio_emulator.script(twilio_emulator.drop())
    bus_id = send_sms(bus=board.bus, to=NUMBER, body="twice is fine")
    run(board)
    assert len(vonage_emulator.requests_to()) == 1
    record = record_of(board, bus_id)
    assert (record["status"], record["provider"]) == ("accepted", "vonage")
    assert '"outcome": "timeout"' in record["tries"]


def test_rejected_credentials_open_the_primary_circuit_and_fail_over(
    make_board: Make, twilio_emulator: TwilioEmulator, vonage_emulator: VonageEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    board = make_board(twilio={"auth_token": "wrong-token-0123456789abcdef01"})
    seen = listen(board, "provider_circuit_opened")
    first = send_sms(bus=board.bus, to=NUMBER, body="one")
    run(board)
    second = send_sms(bus=board.bus, to=NUMBER, body="two")
    run(board)

    assert len(twilio_emulator.requests_to()) == 1  # the second send skipped its open circuit
    assert len(vonage_emulator.requests_to()) == 2
    assert record_of(board, first)["provider"] == record_of(board, second)["provider"] == "vonage"
    assert '"outcome": "circuit_open"' in record_of(board, second)["tries"]
    [event] = seen
    assert event["provider"] == "twilio" and "ProviderConfigurationError" in event["reason"]
    assert "wrong-token" not in str(event)
    assert len([r for r in caplog.records if "circuit of twilio OPENED" in r.getMessage()]) == 1


def test_the_circuit_opens_after_failures_and_closes_after_the_cooldown(
    make_board: Make, twilio_emulator: TwilioEmulator, vonage_emulator: VonageEmulator
) -> None:
    board = make_board(circuit={"cooldown": 2.0})  # longer than the five sends on a loaded machine
    seen = listen(board, "provider_circuit_opened", "provider_circuit_closed")
    twilio_emulator.script(*[twilio_emulator.error(503) for _ in range(3)])
    for n in range(5):
        send_sms(bus=board.bus, to=NUMBER, body=f"message {n}")
        run(board)
    assert len(twilio_emulator.requests_to()) == 3  # open after 3 failures: no more requests
    assert len(vonage_emulator.requests_to()) == 5
    assert [e["type"] for e in seen] == ["provider_circuit_opened"]

    # After the cooldown one send probes the primary, which answers again.
    reopens = board.circuits.states(["twilio"])[0].reopens_at or 0
    wait_for(lambda: board.bus.redis.time()[0] >= reopens + 1, timeout=5)
    bus_id = send_sms(bus=board.bus, to=NUMBER, body="probe")
    run(board)
    assert len(twilio_emulator.requests_to()) == 4
    assert record_of(board, bus_id)["provider"] == "twilio"
    assert [e["type"] for e in seen] == ["provider_circuit_opened", "provider_circuit_closed"]
    assert board.circuits.states(["twilio"])[0].state == "closed"


def test_every_circuit_open_waits_for_the_first_probe(
    make_board: Make, twilio_emulator: TwilioEmulator, vonage_emulator: VonageEmulator
) -> None:
    board = make_board(circuit={"failures": 1, "cooldown": 1.5})
    twilio_emulator.script(twilio_emulator.error(503))
    vonage_emulator.script(vonage_emulator.error(503))
    bus_id = send_sms(bus=board.bus, to=NUMBER, body="Hello")
    run(board)  # both fail, both open; the retries wait for the first cooldown, then probe it
    record = record_of(board, bus_id)
    assert (record["status"], record["provider"]) == ("accepted", "twilio")
    steps = board.deliveries.timeline(f"sms:{bus_id}")
    assert "every sms provider's circuit is open" in steps[-2]["error"]
    assert [t["outcome"] for t in steps[-2]["tries"]] == ["circuit_open", "circuit_open"]


def test_over_the_recipient_limit_the_send_is_refused_and_recorded(
    make_board: Make, twilio_emulator: TwilioEmulator
) -> None:
    board = make_board(sms={"recipient_limit": 2, "recipient_window": 600})
    seen = listen(board, "sms_failed")
    ids = [send_sms(bus=board.bus, to=NUMBER, body=f"n{n}") for n in range(3)]
    run(board)
    assert len(twilio_emulator.requests_to()) == 2
    [refused] = [record_of(board, i) for i in ids if record_of(board, i)["status"] == "rate_limited"]
    assert refused["reason"] == "rate_limited" and "2/2" in refused["error"] and "4155550123" not in refused["error"]
    [event] = seen
    assert event["status"] == "rate_limited" and event["reason"] == "rate_limited"
    assert board.deliveries.outcome_totals()["sms"]["rate_limited"] == 1


def test_an_sms_outside_the_allowed_countries_is_refused_with_its_reason(
    make_board: Make, twilio_emulator: TwilioEmulator
) -> None:
    board = make_board(sms={"allowed_countries": ["GB"]})
    jamaica = send_sms(bus=board.bus, to="+18765550123", body="Hello")
    britain = send_sms(bus=board.bus, to="+447400123456", body="Hello")
    run(board)
    assert [r.form_value("To") for r in twilio_emulator.requests_to()] == ["+447400123456"]
    record = record_of(board, jamaica)
    assert (record["status"], record["reason"]) == ("failed", "country")
    assert "country JM is not allowed" in record["error"]
    assert record_of(board, britain)["status"] == "accepted"


def test_quiet_hours_hold_a_non_transactional_message_until_they_end(
    make_board: Make, twilio_emulator: TwilioEmulator, r: redis.Redis
) -> None:
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    board = make_board(
        quiet_hours={"window": f"{start:%H:%M}-{end:%H:%M}"},
        categories={"orders": {"transactional": False}, "security": {"transactional": True}},
    )
    held = send_sms(bus=board.bus, to=NUMBER, template="order_shipped", data=SHIPPED)
    code = send_sms(bus=board.bus, to=NUMBER, template="password_reset", data={"code": "1", "expires_minutes": 5})
    urgent = send_sms(bus=board.bus, to=NUMBER, template="order_shipped", data=SHIPPED, priority="high")
    run(board)

    assert len(twilio_emulator.requests_to()) == 2  # the security code and the high-priority one
    assert record_of(board, code)["status"] == record_of(board, urgent)["status"] == "accepted"
    record = record_of(board, held)
    assert record["status"] == "held" and record["attempts"] == "0"
    until = datetime.fromisoformat(record["held_until"])
    assert until == end.replace(second=0, microsecond=0)
    assert r.zrange("resque:delayed_queue_schedule", 0, -1) == [str(int(until.timestamp())).encode()]


def test_over_the_provider_rate_a_send_waits_and_the_wait_is_counted(
    make_board: Make, twilio_emulator: TwilioEmulator
) -> None:
    board = make_board(rate_limits={"twilio": 5})
    ids = [send_sms(bus=board.bus, to=NUMBER, body=f"n{n}") for n in range(4)]
    started = time.monotonic()
    run(board)
    assert time.monotonic() - started >= 0.55  # 4 sends at 5/s: 3 intervals of 0.2 s
    assert len(twilio_emulator.requests_to()) == 4
    assert all(record_of(board, i)["status"] == "accepted" for i in ids)
    assert board.sender.waits.totals()["twilio"] >= 3


def test_a_probe_that_stops_before_the_provider_call_is_given_back(
    make_board: Make, twilio_emulator: TwilioEmulator, vonage_emulator: VonageEmulator
) -> None:
    board = make_board(circuit={"failures": 1, "cooldown": 0.2})
    twilio_emulator.script(twilio_emulator.error(503))
    send_sms(bus=board.bus, to=NUMBER, body="opens the circuit")
    run(board)
    reopens = board.circuits.states(["twilio"])[0].reopens_at or 0
    wait_for(lambda: board.bus.redis.time()[0] >= reopens + 1, timeout=5)
    board.suppressions.add("sms", recipient_digest("+14155550999"), "+1415*****99", "test", time.time())
    suppressed = send_sms(bus=board.bus, to="+14155550999", body="admitted as the probe, never sent")
    run(board)
    assert record_of(board, suppressed)["status"] == "suppressed"
    probe = send_sms(bus=board.bus, to=NUMBER, body="the probe")
    run(board)
    assert record_of(board, probe)["provider"] == "twilio"  # not passed over until the permit expired
    assert board.circuits.states(["twilio"])[0].state == "closed"
