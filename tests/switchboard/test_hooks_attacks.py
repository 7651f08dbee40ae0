"""An attacker facing the webhook receiver, and an operator who needs it to hold: signatures that
must not be bypassed, events that must not reach deliveries they are not about, writes that must
survive a failure half way, and logs that must not hold a recipient or a secret."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, MutableMapping
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from twilio.request_validator import RequestValidator

from bus import Bus
from bus.telemetry.logs import WIRE_LOGGERS
from switchboard.client import send_email, send_sms
from switchboard.errors import SettingsError
from switchboard.hooks.app import create_hooks_app
from switchboard.privacy import recipient_digest
from tests.support.emulators.webhooks import WebhookKeys, post_sendgrid, post_twilio, webhook_keys
from tests.switchboard.hooks_support import Stack, raw_post
from tests.switchboard.test_hooks import PUBLIC, SID, STATUS, TOKEN, event, published, settings_for, signed
from tests.web.conftest import Client as TestClient


@pytest.fixture
def client(redis_url: str, keys: WebhookKeys) -> Iterator[TestClient]:
    bus = Bus(redis_url)
    with TestClient(create_hooks_app(bus, settings_for(keys)), base_url=PUBLIC) as c:
        yield c
    bus.close()


def status_of(s: Stack, delivery_id: str) -> str:
    record = s.board.deliveries.get(delivery_id)
    assert record is not None
    return record.status


# --- signatures -----------------------------------------------------------------------
def test_signature_headers_in_any_case_and_repeated(client: TestClient, keys: WebhookKeys, r: redis.Redis) -> None:
    body = json.dumps([event()]).encode()
    good = signed(keys, body)
    lower = {name.lower(): value for name, value in good.items()}
    assert client.post("/hooks/sendgrid", content=body, headers=lower).status_code == 200
    # A forged signature header ahead of (or after) the genuine one does not let a changed body in.
    changed = body.replace(b"delivered", b"bounce")
    forged = [(name, value) for name, value in good.items()] + [(next(iter(good)), "Zm9yZ2Vk")]
    for headers in (forged, list(reversed(forged))):
        assert client.post("/hooks/sendgrid", content=changed, headers=headers).status_code == 403
    assert len(published(r)) == 1


def test_forwarded_headers_do_not_choose_the_url_twilio_signed(client: TestClient, r: redis.Redis) -> None:
    path = "/hooks/twilio/status?delivery=sms%3Acode-1"
    evil = f"https://evil.example{path}"
    signature = RequestValidator(TOKEN).compute_signature(evil, STATUS)
    headers = {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "Forwarded": "host=evil.example;proto=https",
    }
    assert client.post(path, content=urlencode(STATUS).encode(), headers=headers).status_code == 403
    assert r.dbsize() == 0


def test_twilio_url_variations(client: TestClient, r: redis.Redis) -> None:
    path = "/hooks/twilio/status?delivery=sms%3Acode-1"
    form = urlencode(STATUS).encode()

    def post(url_signed: str, path_posted: str = path) -> int:
        signature = RequestValidator(TOKEN).compute_signature(url_signed, STATUS)
        headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
        return int(client.post(path_posted, content=form, headers=headers).status_code)

    # Twilio signs with or without the default port: both are the same URL.
    assert post(f"https://hooks.example.com:443{path}") == 204
    # A delivery id added to (or swapped in) a signed URL's query is not signed.
    assert post(f"{PUBLIC}{path}", path + "&delivery=sms%3Aother") == 403
    assert post(f"{PUBLIC}/hooks/twilio/status", path) == 403
    assert post(f"{PUBLIC}{path}", "/hooks/twilio/status?delivery=sms%3Acode-1&x=1") == 403
    assert post(f"https://hooks.example.com:8443{path}") == 403
    assert [e["delivery_id"] for e in published(r)] == ["sms:code-1"]


def test_an_empty_twilio_auth_token_is_refused_at_start(redis_url: str, keys: WebhookKeys) -> None:
    bus = Bus(redis_url)
    with pytest.raises(SettingsError, match="auth_token"):
        create_hooks_app(bus, settings_for(keys, twilio={"auth_token": ""}))
    bus.close()


# --- bodies, limits, outages ----------------------------------------------------------
def test_unsigned_bodies_of_many_tiny_events_are_refused_unparsed(client: TestClient, r: redis.Redis) -> None:
    body = b"[" + b"{}," * 20_000 + b"{}]"
    headers = {"X-Twilio-Email-Event-Webhook-Signature": "Zm9yZ2Vk", "X-Twilio-Email-Event-Webhook-Timestamp": "1"}
    assert client.post("/hooks/sendgrid", content=body, headers=headers).status_code == 403
    assert r.dbsize() == 0


def test_a_signed_batch_of_many_tiny_events_is_rejected_not_published(
    client: TestClient, keys: WebhookKeys, r: redis.Redis
) -> None:
    body = b"[" + b"{}," * 20_000 + b"{}]"
    response = client.post("/hooks/sendgrid", content=body, headers=signed(keys, body))
    assert response.status_code == 200 and response.json()["rejected"] == 20_001 and r.dbsize() == 0


@pytest.mark.parametrize("length", [b"\xb2", b"-1", b"1e9", b" 12", b"99999999999999999999999"])
def test_a_content_length_that_is_not_a_plain_number_is_refused(
    redis_url: str, keys: WebhookKeys, r: redis.Redis, length: bytes
) -> None:
    """'\xb2' (latin-1 superscript two) is a digit to str.isdigit() but not to int(). Sent as the
    ASGI server would hand it on (a test client writes its own Content-Length)."""
    import asyncio

    app = create_hooks_app(Bus(redis_url), settings_for(keys))
    body = json.dumps([event()]).encode()
    headers = [(name.lower().encode(), value.encode()) for name, value in signed(keys, body).items()]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/hooks/sendgrid",
        "raw_path": b"/hooks/sendgrid",
        "query_string": b"",
        "headers": [(b"host", b"hooks.example.com"), (b"content-length", length), *headers],
        "scheme": "https",
        "server": ("hooks.example.com", 443),
        "client": ("127.0.0.1", 5),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] in (400, 413) and r.dbsize() == 0


def test_a_gzip_bomb_is_never_inflated(client: TestClient, keys: WebhookKeys, r: redis.Redis) -> None:
    """Bodies are verified and read as sent: a compressed body (10 MB of zeros in 10 KB) stays 10 KB."""
    import gzip

    bomb = gzip.compress(b"0" * 10_000_000)
    headers = {**signed(keys, bomb), "Content-Encoding": "gzip"}
    answer = client.post("/hooks/sendgrid", content=bomb, headers=headers)
    assert answer.status_code in (400, 403) and r.dbsize() == 0  # not UTF-8: cannot be verified


def test_refusals_say_nothing_about_the_expected_signature(client: TestClient, keys: WebhookKeys) -> None:
    body = json.dumps([event()]).encode()
    headers = signed(webhook_keys(), body)
    answer = client.post("/hooks/sendgrid", content=body, headers=headers)
    assert answer.status_code == 403 and answer.json() == {"error": "bad signature"}
    assert keys.public_key not in answer.text


def test_a_body_trickling_in_is_cut_off(redis_url: str, keys: WebhookKeys, r: redis.Redis) -> None:
    """A client that sends its headers, then the body a byte at a time (or never), would hold a
    request open for as long as it likes: thousands of them exhaust the receiver."""
    import asyncio

    settings = settings_for(keys, hooks={"max_body_bytes": 64 * 1024, "body_timeout": 0.3})
    app = create_hooks_app(Bus(redis_url), settings)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": b"[", "more_body": True}  # never the end

    async def request() -> list[dict[str, Any]]:
        return await asyncio.wait_for(raw_post(app, "/hooks/sendgrid", receive), timeout=5)

    sent = asyncio.run(request())
    assert sent[0]["status"] == 408 and r.dbsize() == 0


def test_redis_refusing_writes_mid_batch_answers_503_then_the_retry_lands_once(
    client: TestClient, keys: WebhookKeys, r: redis.Redis
) -> None:
    """Out of memory (or a replica promoted under us) refuses the publish: the provider must get a 5xx
    and send the batch again, and the batch sent again must land once."""
    body = json.dumps([event(sg_event_id="ev-oom-1"), event(sg_event_id="ev-oom-2")]).encode()
    policy = str(r.config_get("maxmemory-policy")["maxmemory-policy"])
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", 1)
    try:
        answer = client.post("/hooks/sendgrid", content=body, headers=signed(keys, body))
        assert answer.status_code == 503 and answer.json() == {"error": "try again later"}
    finally:
        r.config_set("maxmemory", 0)
        r.config_set("maxmemory-policy", policy)
    assert published(r) == []
    assert client.post("/hooks/sendgrid", content=body, headers=signed(keys, body)).status_code == 200
    assert sorted(e["event_id"] for e in published(r)) == ["ev-oom-1", "ev-oom-2"]


# --- events for deliveries they are not about -----------------------------------------
def test_a_signed_event_cannot_move_a_delivery_to_someone_else(s: Stack, keys: WebhookKeys) -> None:
    """SendGrid signs whatever was sent through the account: an event whose custom_args name one of
    our deliveries, but about another recipient or channel, must not touch that delivery."""
    seen = s.listen("email_bounced", "sms_undelivered")
    send_email(bus=s.bus, to="ada@example.com", subject="Hi", text="Hello", idempotency_key="victim")
    send_sms(bus=s.bus, to="+14155550123", body="Hi", idempotency_key="victim")
    s.run()
    # The providers' own callbacks stay queued (unsent): only the forged ones arrive.
    forged = [
        event(email="mallory@example.com", event="bounce", type="blocked", switchboard_delivery_id="email:victim"),
        event(email="ada@example.com", event="bounce", type="blocked", switchboard_delivery_id="sms:victim"),
    ]
    assert post_sendgrid(f"{s.url}/hooks/sendgrid", forged, keys).status == 200
    s.run()
    assert status_of(s, "email:victim") == "accepted" and status_of(s, "sms:victim") == "accepted"
    assert seen == []
    assert [step["status"] for step in s.board.deliveries.timeline("email:victim")] == ["accepted"]
    # The genuine recipient's events still apply.
    genuine = event(email="Ada@Example.com", switchboard_delivery_id="email:victim")
    assert post_sendgrid(f"{s.url}/hooks/sendgrid", [genuine], keys).status == 200
    s.run()
    assert status_of(s, "email:victim") == "delivered"


def test_a_twilio_callback_for_another_number_cannot_move_a_delivery(s: Stack) -> None:
    send_sms(bus=s.bus, to="+14155550123", body="Hi", idempotency_key="victim")
    s.run()
    url = f"{s.url}/hooks/twilio/status?delivery=sms%3Avictim"
    other = {**STATUS, "To": "+14155550999", "MessageStatus": "undelivered", "ErrorCode": "30005"}
    assert post_twilio(url, other, s.twilio.auth_token).status == 204
    s.run()
    assert status_of(s, "sms:victim") == "accepted"


# --- failures half way ----------------------------------------------------------------
def _unsubscribe(delivery_id: str, recipient: str) -> dict[str, Any]:
    return {
        "provider": "sendgrid",
        "channel": "email",
        "event_id": "ev-unsub",
        "event": "unsubscribe",
        "status": "unsubscribed",
        "at": time.time(),
        "recipient": "u***@example.com",
        "recipient_digest": recipient_digest(recipient),
        "delivery_id": delivery_id,
        "suppress": True,
    }


def _applied_after_a_refused_suppression(s: Stack, r: redis.Redis, channel: str, event: dict[str, Any]) -> None:
    """Redis refuses the event's suppression write once (WRONGTYPE); then the bus runs the job again."""
    suppressions = f"resque:switchboard:suppressions:{channel}"
    r.set(suppressions, "in the way")
    with pytest.raises(redis.ResponseError):
        s.board.statuses.handle(event)
    r.delete(suppressions)
    s.board.statuses.handle(event)


def test_a_suppression_survives_a_failed_write_after_the_event_was_recorded(s: Stack, r: redis.Redis) -> None:
    send_email(bus=s.bus, to="unsubscribe@example.com", subject="Hi", text="Hello", idempotency_key="u-crash")
    s.run()
    unsubscribe = _unsubscribe("email:u-crash", "unsubscribe@example.com")
    _applied_after_a_refused_suppression(s, r, "email", unsubscribe)
    assert s.board.suppressions.suppressed("email", [recipient_digest("unsubscribe@example.com")])
    # Once written, a duplicate still does not bring back a lifted suppression.
    s.board.suppressions.remove("email", recipient_digest("unsubscribe@example.com"))
    s.board.statuses.handle(unsubscribe)
    assert s.board.suppressions.list("email") == []


def test_a_bounce_whose_suppression_failed_is_suppressed_when_it_comes_again(s: Stack, r: redis.Redis) -> None:
    """The announcement goes in one pipeline with the suppression: a refused suppression must not
    clear the event's pending mark on its way."""
    seen = s.listen("email_bounced")
    send_email(bus=s.bus, to="bounce@example.com", subject="Hi", text="Hello", idempotency_key="b-crash")
    s.run()
    bounce = {
        **_unsubscribe("email:b-crash", "bounce@example.com"),
        "event_id": "ev-bounce",
        "event": "bounce",
        "status": "bounced",
        "recipient": "b***@example.com",
    }
    _applied_after_a_refused_suppression(s, r, "email", bounce)
    assert s.board.suppressions.suppressed("email", [recipient_digest("bounce@example.com")])
    s.run()
    assert [e["delivery_id"] for e in seen][:1] == ["email:b-crash"]  # announced (at least once)


def test_an_inbound_stop_survives_a_failed_write(s: Stack, r: redis.Redis) -> None:
    stop = {
        "provider": "twilio",
        "channel": "sms",
        "event_id": SID,
        "event": "inbound STOP",
        "status": "opted_out",
        "at": time.time(),
        "recipient": "+1415*****23",
        "recipient_digest": recipient_digest("+14155550123"),
        "reason": "replied STOP",
        "suppress": True,
    }
    _applied_after_a_refused_suppression(s, r, "sms", stop)
    assert s.board.suppressions.suppressed("sms", [recipient_digest("+14155550123")])
    # Once written, the same STOP again (a replay) does not bring back a lifted opt-out.
    s.board.suppressions.remove("sms", recipient_digest("+14155550123"))
    s.board.statuses.handle(stop)
    assert s.board.suppressions.list("sms") == []


def test_workers_applying_the_same_events_at_once_count_them_once(s: Stack, r: redis.Redis) -> None:
    import threading

    send_email(bus=s.bus, to="ada@example.com", subject="Hi", text="Hello", idempotency_key="race")
    s.run()
    steps = [("ev-d", "deferred"), ("ev-del", "delivered"), ("ev-def2", "deferred")]
    events = [
        {
            "provider": "sendgrid",
            "channel": "email",
            "event_id": event_id,
            "event": status,
            "status": status,
            "at": time.time(),
            "recipient": "a***@example.com",
            "recipient_digest": recipient_digest("ada@example.com"),
            "delivery_id": "email:race",
        }
        for event_id, status in steps
    ]
    barrier = threading.Barrier(4)

    def worker(order: list[dict[str, Any]]) -> None:
        barrier.wait()
        for e in order:
            s.board.statuses.handle(e)

    threads = [threading.Thread(target=worker, args=(events if n % 2 else events[::-1],)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert status_of(s, "email:race") == "delivered"
    assert r.hget("resque:switchboard:delivery_finals", "email:delivered") == b"1"
    timeline = [step["status"] for step in s.board.deliveries.timeline("email:race")]
    assert sorted(timeline) == ["accepted", "deferred", "deferred", "delivered"]


# --- logs -----------------------------------------------------------------------------
def test_debug_logs_hold_no_recipient_and_no_secret(
    s: Stack, keys: WebhookKeys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    send_email(bus=s.bus, to="bounce.ada@example.com", subject="Hi", text="Hello", idempotency_key="logs-1")
    send_sms(bus=s.bus, to="+14155550030", body="Hi", idempotency_key="logs-2")
    s.run()
    s.deliver_webhooks()
    assert s.twilio.send_inbound(f"{s.url}/hooks/twilio/inbound", "+14155550123", "STOP").status == 200
    s.run()
    forged = event(email="eve@example.com")
    assert post_sendgrid(f"{s.url}/hooks/sendgrid", [forged], webhook_keys()).status == 403
    # The SDKs' wire logs are the CLI's to quiet (below -vvv) and redact (handler filters): ours are not.
    ours = [record for record in caplog.records if not record.name.startswith(WIRE_LOGGERS)]
    text = "\n".join(record.getMessage() for record in ours)
    assert "bounced" in text or "suppressed" in text  # something was logged
    for secret in ("bounce.ada@example.com", "+14155550030", "+14155550123", "eve@example.com"):
        assert secret not in text
    assert s.twilio.auth_token not in text and keys.public_key not in text
