"""Who gets a message, and what is stored: the switchboard's promises, through the real SDKs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import redis

from bus import Bus
from switchboard.client import send_email, send_push, send_sms
from switchboard.privacy import recipient_digest
from tests.support.emulators import FcmEmulator, Reply, Scripted, SendGridEmulator, TwilioEmulator
from tests.switchboard.boards import Make, run
from tests.switchboard.test_sending import ROOT, WELCOME, failures, listen
from tests.switchboard.test_sending import make_board as make_board  # the fixture


def requests_json(emulator: SendGridEmulator) -> list[dict[str, Any]]:
    return [r.json for r in emulator.requests_to()]


# --- 1. only the recipient the provider named is suppressed ------------------------------
def test_a_refused_address_is_suppressed_alone_and_its_co_recipient_is_not(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board()
    seen = listen(board, "email_failed")
    sendgrid_emulator.script(
        sendgrid_emulator.error(400, message="Does not contain a valid address.", field="personalizations.0.to.1.email")
    )
    send_email(bus=board.bus, to=["good@example.com", "gone@example.com"], subject="Hi", text="Hello")
    run(board)
    assert [e["recipient"] for e in board.suppressions.list("email")] == ["g***@example.com"]
    assert board.suppressions.suppressed("email", [recipient_digest("gone@example.com")])
    assert not board.suppressions.suppressed("email", [recipient_digest("good@example.com")])
    (event,) = seen
    assert event["reason"] == "recipient" and "good@" not in json.dumps(event) and "gone@" not in json.dumps(event)
    bus_id = send_email(bus=board.bus, to="good@example.com", subject="Hi again", text="Hello")
    run(board)
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "accepted"


def test_a_refusal_that_names_no_recipient_suppresses_nobody_and_says_so(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board()
    sendgrid_emulator.script(
        sendgrid_emulator.error(400, message="Does not contain a valid address.", field="personalizations.0.to.7.email")
    )
    bus_id = send_email(bus=board.bus, to=["a@example.com", "b@example.com"], subject="Hi", text="Hello")
    run(board)
    assert board.suppressions.list("email") == []
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "failed"
    assert "did not say which recipient: nobody was suppressed" in record.fields["error"]


def test_only_the_unregistered_push_tokens_are_suppressed(make_board: Make, fcm_emulator: FcmEmulator) -> None:
    board = make_board()
    fcm_emulator.unregister("gone-token-aaaaaaaaaaaa")
    send_push(bus=board.bus, to=["live-token-bbbbbbbbbbbb", "gone-token-aaaaaaaaaaaa"], title="T", body="B")
    run(board)
    assert board.suppressions.suppressed("push", [recipient_digest("gone-token-aaaaaaaaaaaa")])
    assert not board.suppressions.suppressed("push", [recipient_digest("live-token-bbbbbbbbbbbb")])


# --- 2. cc and bcc are checked too -------------------------------------------------------------
def test_a_suppressed_cc_or_bcc_is_dropped_and_recorded_and_a_suppressed_to_stops_the_send(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board()
    for address in ("blocked-cc@example.com", "blocked-bcc@example.com", "blocked-to@example.com"):
        board.suppressions.add("email", recipient_digest(address), "b***@example.com", "complaint", 1.0)
    seen = listen(board, "email_sent", "email_failed")
    bus_id = send_email(
        bus=board.bus,
        to="ada@example.com",
        cc=["blocked-cc@example.com", "ok-cc@example.com"],
        bcc="blocked-bcc@example.com",
        subject="Hi",
        text="Hello",
    )
    send_email(bus=board.bus, to="blocked-to@example.com", cc="ok-cc@example.com", subject="Hi", text="Hello")
    run(board)
    (mail,) = requests_json(sendgrid_emulator)
    personalization = mail["personalizations"][0]
    assert personalization["to"] == [{"email": "ada@example.com"}]
    assert personalization["cc"] == [{"email": "ok-cc@example.com"}]
    assert "bcc" not in personalization
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "accepted"
    assert json.loads(record.fields["dropped_recipients"]) == ["b***@example.com", "b***@example.com"]
    assert sorted(e["status"] for e in seen) == ["accepted", "suppressed"]


# --- 3. the same idempotency key on another message ------------------------------------------
def test_reusing_an_idempotency_key_for_another_message_is_a_recorded_conflict(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board()
    seen = listen(board, "email_sent", "email_failed")
    send_email(bus=board.bus, to="ada@example.com", subject="Hi", text="One", idempotency_key="order-1")
    run(board)
    second = send_email(bus=board.bus, to="bob@example.com", subject="Hi", text="Two", idempotency_key="order-1")
    send_email(
        bus=board.bus, to="ada@example.com", subject="Hi", text="One", idempotency_key="order-1"
    )  # a true duplicate
    run(board)
    assert len(sendgrid_emulator.requests_to()) == 1
    conflicts = [e for e in seen if e.get("reason") == "idempotency_conflict"]
    assert [(e["idempotency_key"], e["bus_id"], e["status"]) for e in conflicts] == [("order-1", second, "failed")]
    assert [e["status"] for e in seen if e.get("reason") != "idempotency_conflict"] == ["accepted"]
    assert board.deliveries.get(f"email:order-1:conflict:{second}") is not None


# --- 4. an event that fails validation here -----------------------------------------------
def test_an_invalid_event_from_another_language_is_recorded_and_announced(make_board: Make, r: redis.Redis) -> None:
    board = make_board()
    seen = listen(board, "email_failed")
    raw = Bus(board.bus.settings.redis_url)  # as a Ruby or Node publisher would: no client-side validation
    bus_id = raw.publish("send_email", {"to": "not-an-address", "idempotency_key": "signup-9", "colour": "red"})
    run(board)
    (event,) = seen
    assert (event["idempotency_key"], event["bus_id"], event["reason"]) == ("signup-9", bus_id, "invalid")
    assert any(e.startswith("to.0:") for e in event["errors"]) and any("colour" in e for e in event["errors"])
    assert "not-an-address" not in json.dumps(event)
    record = board.deliveries.get("email:signup-9")
    assert record is not None and record.status == "failed" and record.fields["reason"] == "invalid"
    assert [f["exception"] for f in failures(r)] == ["bus.errors.Reject"]


# --- 5. a timeout after the request arrived is "unknown", tried at most once more ----------
def test_a_provider_slower_than_the_timeout_sends_at_most_twice_then_records_unknown(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board(sendgrid={"timeout": 0.3})
    seen = listen(board, "email_failed", "email_sent")
    sendgrid_emulator.script(sendgrid_emulator.slow(1.0), sendgrid_emulator.slow(1.0), sendgrid_emulator.slow(1.0))
    bus_id = send_email(bus=board.bus, to="ada@example.com", subject="Hi", text="Hello")
    run(board)
    assert len(sendgrid_emulator.requests_to()) == 2  # the first try and one retry: never four copies
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "unknown" and record.fields["reason"] == "timeout"
    (event,) = seen
    assert event["status"] == "unknown" and "may have been sent" in event["error"]


def test_with_no_ambiguous_retries_a_timeout_is_unknown_at_once(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board(sendgrid={"timeout": 0.3}, retry={"ambiguous_retries": 0})
    sendgrid_emulator.script(sendgrid_emulator.slow(1.0))
    bus_id = send_email(bus=board.bus, to="ada@example.com", subject="Hi", text="Hello")
    run(board)
    assert len(sendgrid_emulator.requests_to()) == 1
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "unknown"


# --- 6. a stopped channel is in Redis, probed, and resumes by itself --------------------------
def test_a_stopped_channel_is_probed_and_resumes_when_the_provider_takes_us_again(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board(retry={"configuration_delay": 0.2, "max_retries": 20})
    other = make_board(retry={"configuration_delay": 0.2, "max_retries": 20})  # a second worker process's view
    unauthorized = sendgrid_emulator.error(401)
    sendgrid_emulator.script(unauthorized, unauthorized)
    first = send_email(bus=board.bus, to="ada@example.com", subject="Hi", text="Hello")
    second = send_email(bus=board.bus, to="bob@example.com", subject="Hi", text="Hello")
    run(board)
    assert board.channel_states.all() == []  # the probe went through: resumed, for every worker
    assert other.channel_states.all() == []
    for bus_id in (first, second):
        record = board.deliveries.get(f"email:{bus_id}")
        assert record is not None and record.status == "accepted"
    assert len(sendgrid_emulator.requests_to()) == 4  # 2 refused (the first try, a failed probe), then 2 sent


def test_an_unverified_sender_stops_that_sender_only(make_board: Make, sendgrid_emulator: SendGridEmulator) -> None:
    board = make_board(senders=["Acme <no-reply@acme.example>", "Ops <ops@acme.example>"])
    sendgrid_emulator.script(
        sendgrid_emulator.error(
            403, message="The from address does not match a verified Sender Identity.", field="from"
        )
    )
    ops = send_email(bus=board.bus, to="ada@example.com", subject="Hi", text="Hi", from_="Ops <ops@acme.example>")
    fine = send_email(bus=board.bus, to="bob@example.com", subject="Hi", text="Hello")
    run(board)
    record = board.deliveries.get(f"email:{fine}")
    # Driven after the refused one, yet sent at its first try: the channel itself never stopped.
    assert record is not None and record.status == "accepted" and record.attempts == 1
    stopped_step, *_ = board.deliveries.timeline(f"email:{ops}")
    assert stopped_step["status"] == "retrying" and "Sender Identity" in stopped_step["error"]
    record = board.deliveries.get(f"email:{ops}")
    assert record is not None and record.status == "accepted"  # probed after configuration_delay, then resumed


# --- 7. resending on purpose once the cause is fixed -----------------------------------------
def test_a_failure_fixed_later_is_resent_on_purpose(
    make_board: Make, twilio_emulator: TwilioEmulator, r: redis.Redis
) -> None:
    board = make_board()
    twilio_emulator.script(
        Scripted(
            Reply.json(
                400, {"code": 21603, "message": "A 'From' phone number is required.", "status": 400, "more_info": ""}
            )
        )
    )
    bus_id = send_sms(bus=board.bus, to="+14155550123", body="Your code is 1")
    run(board)
    record = board.deliveries.get(f"sms:{bus_id}")
    assert record is not None and record.status == "failed" and len(failures(r)) == 1
    from switchboard.resending import resend

    (done,) = resend(board.deliveries, board.bus.failures, [f"sms:{bus_id}"], 2e9)
    assert done.requeued
    run(board)
    record = board.deliveries.get(f"sms:{bus_id}")
    assert record is not None and record.status == "accepted" and failures(r) == []
    assert len(twilio_emulator.requests_to()) == 2
    (again,) = resend(board.deliveries, board.bus.failures, [f"sms:{bus_id}"], 2e9)
    assert not again.requeued and "sent already" in again.outcome


# --- 8. a template added while the worker runs -------------------------------------------------
def test_a_template_added_while_running_renders_at_once(
    make_board: Make, sendgrid_emulator: SendGridEmulator, tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", folder)
    board = make_board(templates_dir=str(folder), template_refresh_seconds=3600)
    shutil.copytree(folder / "email" / "welcome", folder / "email" / "welcome_back")
    bus_id = send_email(bus=board.bus, to="ada@example.com", template="welcome_back", data=WELCOME)
    run(board)
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "accepted"


# --- 10. recipients masked inside provider error texts --------------------------------------------
def test_a_number_quoted_by_the_provider_is_masked_everywhere_it_is_kept(
    make_board: Make, twilio_emulator: TwilioEmulator, r: redis.Redis
) -> None:
    board = make_board()
    seen = listen(board, "sms_failed")
    number = "+15005550001"
    twilio_emulator.script(
        Scripted(
            Reply.json(
                400,
                {"code": 21211, "message": f"The 'To' number {number} is not a valid phone number.", "status": 400},
            )
        )
    )
    send_sms(bus=board.bus, to=number, body="Hi")
    run(board)
    stored = json.dumps([(k.decode(), _value(r, k)) for k in r.scan_iter()])
    assert seen and number not in json.dumps(seen) and number not in stored and number[1:] not in stored
    assert "+1500*****01" in json.dumps(seen)


# --- 11. records tell the truth ----------------------------------------------------------------
def test_a_sent_record_keeps_no_earlier_error_and_says_what_was_rendered(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board()
    sendgrid_emulator.script(sendgrid_emulator.error(503))
    bus_id = send_email(bus=board.bus, to="ada@example.com", template="welcome", data=WELCOME, locale="fr_CA")
    run(board)
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "accepted"
    assert "error" not in record.fields and "error_code" not in record.fields and "code" not in record.fields
    assert record.fields["rendered_locale"] == "fr" and len(record.fields["template_version"]) == 12
    steps = board.deliveries.timeline(f"email:{bus_id}")
    assert [s["status"] for s in steps] == ["retrying", "accepted"]
    assert "503" in steps[0]["error"]


def _value(r: redis.Redis, key: bytes) -> str:
    """Whatever a key holds, as text to search."""
    kind = r.type(key)
    if kind == b"string":
        return repr(r.get(key))
    if kind == b"list":
        return repr(r.lrange(key, 0, -1))
    if kind == b"hash":
        return repr(r.hgetall(key))
    if kind == b"zset":
        return repr(r.zrange(key, 0, -1))
    return repr(r.smembers(key))
