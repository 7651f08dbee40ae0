"""The send path end to end: event -> bus -> switchboard worker -> real SDK -> emulator."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bus import Bus
from switchboard.app import Switchboard
from switchboard.client import send_email, send_push, send_sms
from tests.bus.helpers import FAST, drain
from tests.support.emulators import FcmEmulator, SendGridEmulator, ServiceAccount, TwilioEmulator
from tests.switchboard.boards import Make, board_maker, run

ROOT = Path(__file__).resolve().parents[2]
SENDER = "Acme <no-reply@acme.example>"
WELCOME = {
    "first_name": "Ada",
    "login_url": "https://app.example.com/login",
    "help_url": "https://help.example.com/start",
    "trial_days": 14,
}


@pytest.fixture
def make_board(
    redis_url: str,
    sendgrid_emulator: SendGridEmulator,
    twilio_emulator: TwilioEmulator,
    fcm_emulator: FcmEmulator,
    service_account: ServiceAccount,
) -> Iterator[Make]:
    def base() -> dict[str, Any]:
        return {
            "sendgrid": {"api_key": sendgrid_emulator.api_key, "base_url": sendgrid_emulator.url, "timeout": 2},
            "twilio": {
                "account_sid": twilio_emulator.account_sid,
                "auth_token": twilio_emulator.auth_token,
                "from_number": "+15550001111",
                "base_url": twilio_emulator.url,
                "timeout": 2,
            },
            "fcm": {
                "service_account_json": json.dumps(service_account.info(fcm_emulator.token_uri)),
                "base_url": fcm_emulator.url,
                "timeout": 2,
            },
            "retry": {"max_retries": 2, "base_delay": 0.05, "max_delay": 0.2, "configuration_delay": 0.1},
        }

    with board_maker(redis_url, base, SENDER) as make:
        yield make


def listen(board: Switchboard, *event_types: str) -> list[dict[str, Any]]:
    """Another app subscribing to the switchboard's outcome events."""
    seen: list[dict[str, Any]] = []
    app = board.bus.dispatch("watcher")
    for event_type in event_types:
        app.add(event_type, seen.append)
    board.bus.subscribe_all()
    return seen


def failures(r: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]


def test_email_reaches_sendgrid_with_the_right_request(make_board: Make, sendgrid_emulator: SendGridEmulator) -> None:
    board = make_board()
    seen = listen(board, "email_sent")
    bus_id = send_email(bus=board.bus, to="ada@example.com", template="welcome", data=WELCOME, locale="fr")
    run(board)

    [request] = sendgrid_emulator.requests_to()
    assert request.bearer == sendgrid_emulator.api_key
    mail = request.json
    assert mail["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
    assert mail["from"]["email"] == "no-reply@acme.example"
    assert mail["subject"] == "Bienvenue chez Acme, Ada !"
    assert [c["type"] for c in mail["content"]] == ["text/plain", "text/html"]
    assert "https://app.example.com/login" in mail["content"][1]["value"]

    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None
    assert record.status == "accepted" and record.attempts == 1
    assert record.fields["recipients"] == "a***@example.com"
    assert record.fields["provider_message_id"]
    [event] = seen
    assert event["delivery_id"] == f"email:{bus_id}" and event["recipients"] == ["a***@example.com"]
    assert "ada@example.com" not in json.dumps(event)


def test_sms_reaches_twilio_with_basic_auth(make_board: Make, twilio_emulator: TwilioEmulator) -> None:
    board = make_board()
    send_sms(
        bus=board.bus, to="+14155550123", template="password_reset", data={"code": "123456", "expires_minutes": 10}
    )
    run(board)
    [request] = twilio_emulator.requests_to()
    assert request.basic_auth == (twilio_emulator.account_sid, twilio_emulator.auth_token)
    assert request.path == f"/2010-04-01/Accounts/{twilio_emulator.account_sid}/Messages.json"
    assert request.form_value("To") == "+14155550123"
    assert request.form_value("From") == "+15550001111"
    assert "123456" in (request.form_value("Body") or "")


def test_push_reaches_fcm_with_a_token_from_its_oauth_endpoint(make_board: Make, fcm_emulator: FcmEmulator) -> None:
    board = make_board()
    send_push(bus=board.bus, to="tok-1", title="Hi", body="There", data_payload={"order": "42"})
    run(board)
    [request] = fcm_emulator.requests_to()
    assert request.bearer in fcm_emulator.issued_tokens
    message = request.json["message"]
    assert message["token"] == "tok-1"
    assert message["notification"] == {"title": "Hi", "body": "There"}
    assert message["data"] == {"order": "42"}


def test_one_process_keeps_many_sends_in_flight(make_board: Make, twilio_emulator: TwilioEmulator) -> None:
    """Sends wait on the provider on the worker's event loop, not a thread each (8 threads before)."""
    board = make_board()
    twilio_emulator.latency = 0.3
    ids = [send_sms(bus=board.bus, to=f"+1415555{n:04d}", body=f"code {n}") for n in range(40)]
    drain(board.bus, ["bus_incoming", *board.bus.app_queues()], concurrency=board.settings.concurrency)

    assert len(twilio_emulator.requests_to()) == 40
    assert twilio_emulator.peak_in_flight > 12  # 8 threads before; 40 at once on an idle machine
    records = [board.deliveries.get(f"sms:{bus_id}") for bus_id in ids]
    assert all(r is not None and r.status == "accepted" for r in records)


def test_concurrency_bounds_the_provider_calls_while_more_sends_ride(
    make_board: Make, twilio_emulator: TwilioEmulator
) -> None:
    """``concurrency`` is sends at a provider at once: the worker rides a few more, which claim and
    render meanwhile, but never has more than ``concurrency`` calls in flight."""
    board = make_board(concurrency=8)
    twilio_emulator.latency = 0.2
    ids = [send_sms(bus=board.bus, to=f"+1415555{n:04d}", body=f"code {n}") for n in range(40)]
    worker = board.worker(burst=True, install_signals=False, settings=FAST)
    worker.run()

    assert worker.settings.concurrency == 10  # rides: 8 at the provider, 2 more around them
    assert len(twilio_emulator.requests_to()) == 40
    assert twilio_emulator.peak_in_flight == 8
    records = [board.deliveries.get(f"sms:{bus_id}") for bus_id in ids]
    assert all(r is not None and r.status == "accepted" for r in records)


def test_rate_limits_are_honoured(make_board: Make, sendgrid_emulator: SendGridEmulator) -> None:
    board = make_board()
    sendgrid_emulator.script(sendgrid_emulator.error(429, retry_after=0.4))
    bus_id = send_email(bus=board.bus, to="ada@example.com", subject="Hello", text="Hi")
    started = time.monotonic()
    run(board)
    requests = sendgrid_emulator.requests_to()
    assert len(requests) == 2
    assert time.monotonic() - started >= 0.4
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and (record.status, record.attempts) == ("accepted", 2)


def test_server_errors_are_retried_to_the_limit_then_stall(
    make_board: Make, sendgrid_emulator: SendGridEmulator, r: redis.Redis
) -> None:
    board = make_board()
    seen = listen(board, "email_failed")
    sendgrid_emulator.script(*[sendgrid_emulator.error(503) for _ in range(3)])
    bus_id = send_email(bus=board.bus, to="ada@example.com", subject="Hello", text="Hi")
    run(board)
    assert len(sendgrid_emulator.requests_to()) == 3  # the first try and max_retries=2
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "stalled" and "gave up after 3 attempts" in record.fields["error"]
    [entry] = failures(r)
    assert entry["exception"] == "bus.errors.Reject" and entry["queue"] == "switchboard_email"
    assert seen[0]["status"] == "stalled"
    # the operator fixes the cause and retries from the failed list: it resumes and sends
    assert board.bus.failures.retry(board.bus.failures.list()[0])
    run(board)
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "accepted"
    # every outcome counted, for /metrics and the dashboard: two retries, the stall, then the send
    assert board.deliveries.outcome_totals() == {"email": {"retrying": 2, "stalled": 1, "accepted": 1}}
    assert board.deliveries.outcomes_since(time.time(), 1) == board.deliveries.outcome_totals()


def test_an_invalid_number_fails_once_and_is_suppressed(make_board: Make, twilio_emulator: TwilioEmulator) -> None:
    board = make_board()
    seen = listen(board, "sms_failed")
    twilio_emulator.reject("+14155550999", 21211)
    send_sms(bus=board.bus, to="+14155550999", body="one")
    run(board)
    send_sms(bus=board.bus, to="+14155550999", body="two")
    run(board)
    assert len(twilio_emulator.requests_to()) == 1  # the second was never attempted
    assert [e["status"] for e in seen] == ["failed", "suppressed"]
    assert seen[0]["error_code"] == "21211"
    [entry] = board.suppressions.list("sms")
    assert entry["recipient"] == "+1415*****99" and entry["code"] == "21211"


def test_unregistered_tokens_are_suppressed_and_the_rest_delivered(make_board: Make, fcm_emulator: FcmEmulator) -> None:
    board = make_board()
    fcm_emulator.unregister("gone")
    bus_id = send_push(bus=board.bus, to=["ok-1", "gone", "ok-2"], title="T", body="B")
    run(board)
    assert sorted(r.json["message"]["token"] for r in fcm_emulator.requests_to()) == ["gone", "ok-1", "ok-2"]
    record = board.deliveries.get(f"push:{bus_id}")
    assert record is not None and record.status == "partial"
    targets = json.loads(record.fields["targets"])
    assert [t["outcome"] for t in targets] == ["accepted", "unregistered", "accepted"]
    assert [e["recipient"] for e in board.suppressions.list("push")] == ["****"]
    send_push(bus=board.bus, to="gone", title="T", body="again")
    run(board)
    assert len(fcm_emulator.requests_to()) == 3


def test_rejected_credentials_stop_the_channel_without_losing_the_event(
    make_board: Make, sendgrid_emulator: SendGridEmulator, r: redis.Redis
) -> None:
    board = make_board(sendgrid={"api_key": "SG.wrong-key"})
    bus_id = send_email(bus=board.bus, to="ada@example.com", subject="Hello", text="Hi")
    send_email(bus=board.bus, to="bob@example.com", subject="Hello", text="Hi")
    run(board)
    (stopped,) = board.channel_states.all()  # loudly stopped, for every worker to see
    assert stopped.scope == "email" and "401" in stopped.reason
    # Stopped, the channel is only probed now and then: far fewer requests than attempts.
    attempts = sum(d.attempts for d in board.deliveries.iterate())
    assert len(sendgrid_emulator.requests_to()) < attempts
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "stalled" and "401" in record.fields["error"]
    assert len(failures(r)) == 2  # retries exhausted: kept in the failed list for an operator
    for key in r.keys("*"):
        dump = json.dumps([str(v) for v in _values(r, key)])
        assert "SG.wrong-key" not in dump, key


def _values(r: redis.Redis, key: bytes | str) -> list[Any]:
    kind = r.type(key)
    if kind == b"string":
        return [r.get(key)]
    if kind == b"list":
        return list(r.lrange(key, 0, -1))
    if kind == b"hash":
        return list(r.hgetall(key).items())
    if kind == b"zset":
        return list(r.zrange(key, 0, -1))
    return list(r.smembers(key))


def test_a_redelivered_event_is_not_sent_twice(
    make_board: Make, sendgrid_emulator: SendGridEmulator, r: redis.Redis
) -> None:
    board = make_board()
    send_email(bus=board.bus, to="ada@example.com", subject="Hello", text="Hi")
    drain(board.bus, ["bus_incoming"])
    [job] = r.lrange("resque:queue:switchboard_email", 0, -1)
    r.rpush("resque:queue:switchboard_email", job)  # at-least-once: the same job delivered twice
    send_email(bus=board.bus, to="bob@example.com", subject="Hello", text="Hi", idempotency_key="order-7")
    send_email(bus=board.bus, to="bob@example.com", subject="Hello", text="Hi", idempotency_key="order-7")
    run(board)
    assert sorted(req.json["personalizations"][0]["to"][0]["email"] for req in sendgrid_emulator.requests_to()) == [
        "ada@example.com",
        "bob@example.com",
    ]


@pytest.mark.parametrize(
    ("event_type", "attributes", "message"),
    [
        ("send_email", {"subject": "x", "text": "y"}, "to: Field required"),
        ("send_email", {"to": "not-an-address", "subject": "x", "text": "y"}, "to.0"),
        ("send_email", {"to": "a@b.co", "template": "welcome", "subject": "x"}, "not both"),
        ("send_email", {"to": "a@b.co", "subject": "x"}, "needs text and/or html"),
        (
            "send_email",
            {"to": "a@b.co", "subject": "x", "text": "y", "headers": {"Bcc": "z@b.co"}},
            "set by the switchboard",
        ),
        ("send_email", {"to": "a@b.co", "subject": "x", "text": "y", "color": "red"}, "color: Extra inputs"),
        ("send_sms", {"to": "0612345678", "body": "x"}, "E.164"),
        ("send_sms", {"to": "+14155550123"}, "exactly one of template and body"),
        ("send_push", {"to": "t", "topic": "news", "title": "a", "body": "b"}, "exactly one of the two"),
        ("send_push", {"to": "t", "title": "a", "body": "b", "data_payload": {"n": 1}}, "data_payload.n"),
        ("send_email", {"to": "a@b.co", "subject": "x", "text": "y", "locale": "french"}, "locale"),
        ("send_email", {"to": "a@b.co", "subject": "x", "text": "y", "send_at": "2030-01-01T00:00:00"}, "timezone"),
    ],
)
def test_invalid_events_go_to_failed_naming_the_field(
    make_board: Make, r: redis.Redis, event_type: str, attributes: dict[str, Any], message: str
) -> None:
    board = make_board()
    board.bus.publish(event_type, attributes)
    run(board)
    [entry] = failures(r)
    assert entry["exception"] == "bus.errors.Reject"
    assert message in entry["error"], entry["error"]


def test_template_problems_fail_clearly(make_board: Make, r: redis.Redis, sendgrid_emulator: SendGridEmulator) -> None:
    board = make_board()
    send_email(bus=board.bus, to="a@b.co", template="no_such_template")
    send_email(bus=board.bus, to="a@b.co", template="welcome", data={"first_name": "Ada"})  # missing login_url
    run(board)
    errors = sorted(e["error"] for e in failures(r))
    assert "no_such_template" in errors[1] or "no_such_template" in errors[0]
    assert any("login_url" in e for e in errors)
    assert sendgrid_emulator.requests_to() == []


def test_data_is_never_evaluated_as_a_template(make_board: Make, sendgrid_emulator: SendGridEmulator) -> None:
    board = make_board()
    data = {**WELCOME, "first_name": "{{ ''.__class__.__mro__ }} <script>alert(1)</script>"}
    send_email(bus=board.bus, to="a@b.co", template="welcome", data=data)
    run(board)
    [request] = sendgrid_emulator.requests_to()
    html = request.json["content"][1]["value"]
    assert "{{ ''.__class__.__mro__ }}" in request.json["content"][0]["value"]  # literally, in the text part
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_a_sender_not_in_the_settings_is_refused(make_board: Make, r: redis.Redis) -> None:
    board = make_board()
    send_email(bus=board.bus, to="a@b.co", subject="x", text="y", from_="ceo@elsewhere.example")
    run(board)
    [entry] = failures(r)
    assert "not allowed" in entry["error"]


def test_send_at_goes_through_delayed_publish(make_board: Make, sendgrid_emulator: SendGridEmulator) -> None:
    from datetime import UTC, datetime

    board = make_board()
    later = time.time() + 3600
    bus_id = send_email(
        bus=board.bus, to="a@b.co", subject="x", text="y", send_at=datetime.fromtimestamp(later, UTC).isoformat()
    )
    assert board.bus.delayed.find(bus_id) is not None
    run(board)
    assert sendgrid_emulator.requests_to() == []
    board.bus.scheduler(clock=lambda: later + 1).move_due()
    run(board)
    assert len(sendgrid_emulator.requests_to()) == 1
    # another language publishing send_at directly: the switchboard delays it itself
    board.bus.publish(
        "send_email",
        {"to": "c@d.co", "subject": "x", "text": "y", "send_at": datetime.fromtimestamp(later, UTC).isoformat()},
    )
    run(board)
    assert len(sendgrid_emulator.requests_to()) == 1
    assert board.bus.delayed.count() == 1


def test_the_client_validates_before_publishing(redis_url: str, r: redis.Redis) -> None:
    from switchboard.events import InvalidNotification

    with pytest.raises(InvalidNotification, match=r"E\.164"):
        send_sms(bus=Bus(redis_url), to="12", body="x")
    assert r.keys("*") == []
