"""Delivery status end to end: send_* -> provider emulator -> signed webhook -> switchboard hooks
-> provider_status on the bus -> the worker's record, outcome event and suppression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from bus import RetryLater
from switchboard.cli import main
from switchboard.client import send_email, send_sms
from switchboard.privacy import recipient_digest
from tests.support.clirun import CliRun
from tests.switchboard.hooks_support import Stack


def statuses(s: Stack, delivery_id: str) -> list[str]:
    return [step["status"] for step in s.board.deliveries.timeline(delivery_id)]


def test_an_email_is_accepted_then_delivered(s: Stack) -> None:
    seen = s.listen("email_delivered")
    bus_id = send_email(bus=s.bus, to="ada@example.com", subject="Hi", text="Hello", idempotency_key="signup-42")
    s.run()
    record = s.board.deliveries.get("email:signup-42")
    assert record is not None and record.status == "accepted"
    [mail] = s.sendgrid.requests_to()
    assert mail.json["custom_args"] == {"switchboard_delivery_id": "email:signup-42"}

    s.deliver_webhooks()

    record = s.board.deliveries.get("email:signup-42")
    assert record is not None and record.status == "delivered"
    assert statuses(s, "email:signup-42") == ["accepted", "accepted", "delivered"]  # the send, processed, delivered
    [event] = seen
    assert event["delivery_id"] == "email:signup-42" and event["idempotency_key"] == "signup-42"
    assert event["bus_id"] == bus_id and event["recipient"] == "a***@example.com"
    assert "ada@example.com" not in json.dumps(event)


def test_a_hard_bounce_is_recorded_announced_and_suppressed(s: Stack, r: redis.Redis) -> None:
    seen = s.listen("email_bounced")
    send_email(bus=s.bus, to="bounce.ada@example.com", subject="Hi", text="Hello", idempotency_key="reset-1")
    s.run()
    s.deliver_webhooks()

    record = s.board.deliveries.get("email:reset-1")
    assert record is not None and record.status == "bounced"
    assert record.fields["provider_code"] == "bounce"
    assert "bounce.ada@example.com" not in json.dumps(record.fields)
    [event] = seen
    assert event["status"] == "bounced" and event["idempotency_key"] == "reset-1"
    assert "b***@example.com" in event["reason"] and "bounce.ada@" not in json.dumps(event)
    assert s.board.suppressions.suppressed("email", [recipient_digest("bounce.ada@example.com")])
    [entry] = s.board.suppressions.list("email")
    assert entry["code"] == "sendgrid:bounce" and "event " in entry["reason"]

    # The next email to that address is not sent.
    send_email(bus=s.bus, to="bounce.ada@example.com", subject="Again", text="Hello", idempotency_key="reset-2")
    s.run()
    assert len(s.sendgrid.requests_to()) == 1
    again = s.board.deliveries.get("email:reset-2")
    assert again is not None and again.status == "suppressed"


def test_a_blocked_bounce_is_recorded_without_suppressing(s: Stack) -> None:
    send_email(bus=s.bus, to="blocked@example.com", subject="Hi", text="Hello", idempotency_key="b-1")
    s.run()
    s.deliver_webhooks()
    record = s.board.deliveries.get("email:b-1")
    assert record is not None and record.status == "bounced" and record.fields["provider_code"] == "blocked"
    assert s.board.suppressions.list("email") == []


def test_deferred_then_delivered_and_late_events_never_go_back(s: Stack) -> None:
    send_email(bus=s.bus, to="deferred@example.com", subject="Hi", text="Hello", idempotency_key="d-1")
    send_email(bus=s.bus, to="late@example.com", subject="Hi", text="Hello", idempotency_key="l-1")
    s.run()
    s.deliver_webhooks()
    deferred = s.board.deliveries.get("email:d-1")
    late = s.board.deliveries.get("email:l-1")
    assert deferred is not None and deferred.status == "delivered"
    assert statuses(s, "email:d-1") == ["accepted", "accepted", "deferred", "delivered"]
    # Delivered arrived first: the deferred and processed behind it are kept in the timeline only.
    assert late is not None and late.status == "delivered"
    assert sorted(statuses(s, "email:l-1")) == ["accepted", "accepted", "deferred", "delivered"]


def test_a_duplicate_event_is_applied_once(s: Stack, r: redis.Redis) -> None:
    seen = s.listen("email_delivered")
    send_email(bus=s.bus, to="duplicate@example.com", subject="Hi", text="Hello", idempotency_key="dup-1")
    s.run()
    s.deliver_webhooks()
    assert len(seen) == 1
    assert statuses(s, "email:dup-1") == ["accepted", "accepted", "delivered"]
    assert r.hget("resque:switchboard:delivery_finals", "email:delivered") == b"1"


def test_a_batch_posted_again_changes_nothing(s: Stack, r: redis.Redis) -> None:
    seen = s.listen("email_bounced")
    send_email(bus=s.bus, to="bounce@example.com", subject="Hi", text="Hello", idempotency_key="twice")
    s.run()
    s.deliver_webhooks()
    before = s.board.deliveries.timeline("email:twice")
    assert all(answer.status == 200 for answer in s.sendgrid.repost_webhooks())
    s.run()
    assert len(seen) == 1
    assert s.board.deliveries.timeline("email:twice") == before
    assert r.hget("resque:switchboard:delivery_finals", "email:bounced") == b"1"


def test_a_spam_report_and_an_unsubscribe_suppress(s: Stack) -> None:
    seen = s.listen("email_complained")
    send_email(bus=s.bus, to="spam@example.com", subject="Hi", text="Hello", idempotency_key="s-1")
    send_email(bus=s.bus, to="unsubscribe@example.com", subject="Hi", text="Hello", idempotency_key="u-1")
    s.run()
    s.deliver_webhooks()
    complained = s.board.deliveries.get("email:s-1")
    unsubscribed = s.board.deliveries.get("email:u-1")
    assert complained is not None and complained.status == "complained"
    assert unsubscribed is not None and unsubscribed.status == "delivered"
    assert [e["delivery_id"] for e in seen] == ["email:s-1"]
    codes = sorted(e["code"] for e in s.board.suppressions.list("email"))
    assert codes == ["sendgrid:spamreport", "sendgrid:unsubscribe"]


def test_events_without_our_id_find_the_delivery_by_the_provider_message_id(s: Stack) -> None:
    send_email(bus=s.bus, to="ada@example.com", subject="Hi", text="Hello", idempotency_key="by-id")
    s.run()
    [request] = s.sendgrid.requests_to()
    record = s.board.deliveries.get("email:by-id")
    assert record is not None
    s.sendgrid.discard_webhooks()
    s.sendgrid.queue_events({**request.json, "custom_args": {}}, record.fields["provider_message_id"])
    s.deliver_webhooks()
    record = s.board.deliveries.get("email:by-id")
    assert record is not None and record.status == "delivered"


def test_an_sms_is_delivered_through_its_signed_status_callback(s: Stack) -> None:
    seen = s.listen("sms_delivered")
    send_sms(bus=s.bus, to="+14155550123", body="Your code is 1234", idempotency_key="code-1")
    s.run()
    [create] = s.twilio.requests_to()
    assert create.form_value("StatusCallback") == f"{s.url}/hooks/twilio/status?delivery=sms%3Acode-1"
    s.deliver_webhooks()
    record = s.board.deliveries.get("sms:code-1")
    assert record is not None and record.status == "delivered"
    [event] = seen
    assert event["recipient"] == "+1415*****23" and event["idempotency_key"] == "code-1"


def test_an_undelivered_sms_with_a_permanent_code_suppresses_the_number(s: Stack) -> None:
    seen = s.listen("sms_undelivered")
    send_sms(bus=s.bus, to="+14155550030", body="Hi", idempotency_key="gone")
    send_sms(bus=s.bus, to="+14155550031", body="Hi", idempotency_key="off")
    s.run()
    s.deliver_webhooks()
    gone, off = s.board.deliveries.get("sms:gone"), s.board.deliveries.get("sms:off")
    assert gone is not None and gone.status == "undelivered" and gone.fields["provider_code"] == "30005"
    assert off is not None and off.status == "undelivered"
    assert sorted(e["error_code"] for e in seen) == ["30003", "30005"]
    [entry] = s.board.suppressions.list("sms")
    assert entry["recipient"] == "+1415*****30"


def test_sms_callbacks_out_of_order_and_repeated(s: Stack) -> None:
    seen = s.listen("sms_delivered")
    send_sms(bus=s.bus, to="+14155550032", body="Hi", idempotency_key="ooo")
    send_sms(bus=s.bus, to="+14155550033", body="Hi", idempotency_key="dup")
    s.run()
    s.deliver_webhooks()
    for delivery_id in ("sms:ooo", "sms:dup"):
        record = s.board.deliveries.get(delivery_id)
        assert record is not None and record.status == "delivered"
    assert statuses(s, "sms:dup") == ["accepted", "accepted", "delivered"]
    assert len(seen) == 2


def test_stop_suppresses_a_number_and_start_lifts_it(s: Stack) -> None:
    inbound = f"{s.url}/hooks/twilio/inbound"
    assert s.twilio.send_inbound(inbound, "+14155550123", " stop ").status == 200
    s.run()
    assert s.board.suppressions.suppressed("sms", [recipient_digest("+14155550123")])
    send_sms(bus=s.bus, to="+14155550123", body="Hi", idempotency_key="after-stop")
    s.run()
    assert s.twilio.requests_to() == []
    assert s.twilio.send_inbound(inbound, "+14155550123", "UNSTOP").status == 200
    s.run()
    assert s.board.suppressions.list("sms") == []


def test_start_does_not_lift_a_suppression_for_another_reason(s: Stack) -> None:
    s.board.suppressions.add("sms", recipient_digest("+14155550123"), "+1415*****23", "invalid number", 1.0, "21211")
    s.twilio.send_inbound(f"{s.url}/hooks/twilio/inbound", "+14155550123", "START")
    s.run()
    assert len(s.board.suppressions.list("sms")) == 1


def test_events_wait_for_a_delivery_still_being_sent(s: Stack, r: redis.Redis) -> None:
    send_email(bus=s.bus, to="ada@example.com", subject="Hi", text="Hello", idempotency_key="slow")
    s.run()
    record = "resque:switchboard:delivery:email:slow"
    r.hset(record, "status", "sending")  # as if the worker had not recorded the send yet
    delivered = {
        "provider": "sendgrid",
        "channel": "email",
        "event_id": "ev-1",
        "event": "delivered",
        "status": "delivered",
        "at": 1.0,
        "recipient": "a***@example.com",
        "recipient_digest": recipient_digest("ada@example.com"),
        "delivery_id": "email:slow",
    }
    with pytest.raises(RetryLater):
        s.board.statuses.handle(delivered)
    assert r.hget(record, "status") == b"sending"
    assert statuses(s, "email:slow") == ["accepted"]
    r.hset(record, "status", "accepted")
    s.board.statuses.handle(delivered)
    assert r.hget(record, "status") == b"delivered"


def test_the_cli_filters_by_the_new_statuses_and_shows_the_timeline(
    s: Stack, redis_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    send_email(bus=s.bus, to="bounce@example.com", subject="Hi", text="Hello", idempotency_key="cli-b")
    send_email(bus=s.bus, to="ada@example.com", subject="Hi", text="Hello", idempotency_key="cli-d")
    s.run()
    s.deliver_webhooks()
    settings = tmp_path / "settings.toml"
    settings.write_text("[switchboard]\n")
    run = CliRun(main, capsys, "--redis-url", redis_url, "--settings", str(settings))
    assert [d["id"] for d in run.json("deliveries", "--status", "bounced")] == ["email:cli-b"]
    assert [d["id"] for d in run.json("deliveries", "--status", "delivered")] == ["email:cli-d"]
    shown = run.json("deliveries", "show", "email:cli-b")
    assert shown["status"] == "bounced" and shown["provider_code"] == "bounce"
    assert [step["status"] for step in shown["timeline"]] == ["accepted", "accepted", "bounced"]
    code, out, _ = run("deliveries", "show", "email:cli-b")
    assert code == 0 and "bounced  provider=sendgrid  event=bounce  reason=550 5.1.1 <b***@example.com>" in out
    assert "bounce@example.com" not in out


def test_metrics_count_final_statuses_and_the_delay_to_delivery(s: Stack) -> None:
    from bus.web import WebSettings
    from switchboard.web import create_switchboard_app
    from tests.web.conftest import Client

    send_email(bus=s.bus, to="ada@example.com", subject="Hi", text="Hello", idempotency_key="m-1")
    send_email(bus=s.bus, to="bounce@example.com", subject="Hi", text="Hello", idempotency_key="m-2")
    send_sms(bus=s.bus, to="+14155550123", body="Hi", idempotency_key="m-3")
    s.run()
    s.deliver_webhooks()
    app = create_switchboard_app(s.bus, WebSettings(), s.board.settings)
    with Client(app, base_url="http://localhost") as client:
        text = client.get("/metrics").text
    assert 'switchboard_delivery_final_total{channel="email",status="bounced"} 1.0\n' in text
    assert 'switchboard_delivery_final_total{channel="email",status="delivered"} 1.0\n' in text
    assert 'switchboard_delivery_final_total{channel="sms",status="delivered"} 1.0\n' in text
    assert "# TYPE switchboard_delivery_delay_seconds histogram" in text
    assert 'switchboard_delivery_delay_seconds_bucket{channel="email",le="+Inf"} 1.0\n' in text
    assert 'switchboard_delivery_delay_seconds_bucket{channel="email",le="86400"} 1.0\n' in text
    assert 'switchboard_delivery_delay_seconds_count{channel="sms"} 1.0\n' in text


@pytest.mark.parametrize(
    "delivery_id", ["email:signup-42", "email:a{b}c", "email:x{y", "sms:{b}{c}", "email:a}b", "email:{}x", "sms:}{"]
)
def test_a_delivery_and_its_provider_events_share_a_hash_slot(delivery_id: str) -> None:
    from redis.crc import key_slot

    from bus.keys import Keys
    from switchboard.keys import SwitchboardKeys

    keys = SwitchboardKeys(Keys())
    record, events = keys.delivery(delivery_id), keys.delivery_events(delivery_id)
    assert key_slot(record.encode()) == key_slot(events.encode())


def test_a_duplicate_does_not_bring_back_a_lifted_suppression(s: Stack) -> None:
    send_email(bus=s.bus, to="bounce@example.com", subject="Hi", text="Hello", idempotency_key="lifted")
    s.run()
    s.deliver_webhooks()
    assert s.board.suppressions.remove("email", recipient_digest("bounce@example.com"))  # an operator lifts it
    assert all(answer.status == 200 for answer in s.sendgrid.repost_webhooks())
    s.run()
    assert s.board.suppressions.list("email") == []


def test_an_announcement_lost_in_a_crash_goes_out_when_the_event_comes_again(s: Stack, r: redis.Redis) -> None:
    send_email(bus=s.bus, to="ada@example.com", subject="Hi", text="Hello", idempotency_key="crash")
    s.run()
    delivered = {
        "provider": "sendgrid",
        "channel": "email",
        "event_id": "ev-crash",
        "event": "delivered",
        "status": "delivered",
        "at": 1.0,
        "recipient": "a***@example.com",
        "recipient_digest": recipient_digest("ada@example.com"),
        "delivery_id": "email:crash",
    }
    publish_with = s.bus.publish_with

    def crash(*args: object, **kwargs: object) -> str:
        raise SystemExit("the worker died before announcing")

    s.bus.publish_with = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        s.board.statuses.handle(delivered)
    s.bus.publish_with = publish_with  # type: ignore[method-assign]
    seen = s.listen("email_delivered")
    s.board.statuses.handle(delivered)  # the bus runs the job again
    s.board.statuses.handle(delivered)  # and a duplicate after that announces nothing more
    s.run()
    assert [e["delivery_id"] for e in seen] == ["email:crash"]
    assert statuses(s, "email:crash") == ["accepted", "delivered"]


def test_any_idempotency_key_comes_back_through_both_providers(s: Stack) -> None:
    key = "reset code 42 / ünïcode & more?"
    send_email(bus=s.bus, to="ada@example.com", subject="Hi", text="Hello", idempotency_key=key)
    send_sms(bus=s.bus, to="+14155550123", body="Hi", idempotency_key=key)
    s.run()
    s.deliver_webhooks()
    for channel in ("email", "sms"):
        record = s.board.deliveries.get(f"{channel}:{key}")
        assert record is not None and record.status == "delivered"
