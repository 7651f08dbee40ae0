"""The webhook receiver faces the internet: everything unverified is refused before it is read,
nothing malformed gets further than a 4xx (never a 500), and nothing is written for either."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from twilio.request_validator import RequestValidator

from bus import Bus
from bus.backend.embedded import free_port
from bus.settings import BusSettings
from switchboard.cli import main
from switchboard.errors import SettingsError
from switchboard.hooks.app import create_hooks_app
from switchboard.settings import SwitchboardSettings
from tests.support.clirun import CliRun
from tests.support.emulators.webhooks import SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, WebhookKeys, webhook_keys
from tests.support.polling import wait_for
from tests.switchboard.hooks_support import raw_post
from tests.web.conftest import Client as TestClient

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "https://hooks.example.com"
TOKEN = "twilio-auth-token-for-the-hooks-tests"
SID = "SM" + "a" * 32


def settings_for(keys: WebhookKeys, **overrides: Any) -> SwitchboardSettings:
    values: dict[str, Any] = {
        "templates_dir": str(ROOT / "templates"),
        "public_url": PUBLIC,
        "sendgrid": {"webhook_public_key": keys.public_key},
        "twilio": {"auth_token": TOKEN},
        "hooks": {"max_body_bytes": 64 * 1024},
        **overrides,
    }
    return SwitchboardSettings.from_table(values)


@pytest.fixture
def client(redis_url: str, keys: WebhookKeys) -> Iterator[TestClient]:
    bus = Bus(redis_url)
    # raise_server_exceptions: an exception inside the app fails the test instead of becoming a 500.
    with TestClient(create_hooks_app(bus, settings_for(keys)), base_url=PUBLIC) as c:
        yield c
    bus.close()


def published(r: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(json.loads(raw)["args"][0]) for raw in r.lrange("resque:queue:bus_incoming", 0, -1)]


def event(**fields: Any) -> dict[str, Any]:
    base = {
        "email": "ada@example.com",
        "timestamp": int(time.time()),
        "event": "delivered",
        "sg_event_id": "ev-" + str(time.monotonic_ns()),
        "sg_message_id": "abc123.filter0001.1.0",
        "switchboard_delivery_id": "email:signup-42",
    }
    return {**base, **fields}


def signed(keys: WebhookKeys, body: bytes, at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {SENDGRID_SIGNATURE: keys.sign(body, stamp), SENDGRID_TIMESTAMP: stamp, "Content-Type": "application/json"}


def twilio_post(client: TestClient, path: str, params: dict[str, str], *, token: str = TOKEN, url: str = "") -> Any:
    signature = RequestValidator(token).compute_signature(url or f"{PUBLIC}{path}", params)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    return client.post(path, content=urlencode(params).encode(), headers=headers)


# --- SendGrid -------------------------------------------------------------------------
def test_a_signed_batch_is_published_as_one_event_each(client: TestClient, keys: WebhookKeys, r: redis.Redis) -> None:
    body = json.dumps(
        [event(), event(event="open"), event(event="bounce", type="bounce", reason="550 <ada@example.com>")]
    )
    response = client.post("/hooks/sendgrid", content=body, headers=signed(keys, body.encode()))
    assert response.status_code == 200 and response.json() == {"accepted": 2, "ignored": 1, "rejected": 0}
    delivered, bounced = published(r)
    assert delivered["bus_event_type"] == "provider_status" and delivered["status"] == "delivered"
    assert delivered["delivery_id"] == "email:signup-42" and delivered["message_id"] == "abc123"
    assert bounced["suppress"] is True and bounced["reason"] == "550 <a***@example.com>"
    assert "ada@example.com" not in json.dumps(published(r))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {SENDGRID_TIMESTAMP: "1"},
        {SENDGRID_SIGNATURE: "bm90IGEgc2lnbmF0dXJl", SENDGRID_TIMESTAMP: "now"},
        {SENDGRID_SIGNATURE: "%%% not base64 %%%", SENDGRID_TIMESTAMP: str(int(time.time()))},
    ],
    ids=["unsigned", "no-signature", "bad-timestamp", "garbage-signature"],
)
def test_unsigned_or_garbled_requests_are_refused(client: TestClient, r: redis.Redis, headers: dict[str, str]) -> None:
    response = client.post("/hooks/sendgrid", content=json.dumps([event()]), headers=headers)
    assert response.status_code == 403 and r.dbsize() == 0


def test_a_wrong_key_or_a_changed_body_is_refused(client: TestClient, keys: WebhookKeys, r: redis.Redis) -> None:
    body = json.dumps([event()]).encode()
    assert client.post("/hooks/sendgrid", content=body, headers=signed(webhook_keys(), body)).status_code == 403
    changed = body.replace(b"delivered", b"bounce")
    assert client.post("/hooks/sendgrid", content=changed, headers=signed(keys, body)).status_code == 403
    reserialised = json.dumps(json.loads(body), indent=1).encode()  # same JSON, other bytes
    assert client.post("/hooks/sendgrid", content=reserialised, headers=signed(keys, body)).status_code == 403
    assert r.dbsize() == 0


@pytest.mark.parametrize("offset", [-301, 301], ids=["replayed", "from-the-future"])
def test_a_timestamp_outside_the_tolerance_is_refused(
    client: TestClient, keys: WebhookKeys, r: redis.Redis, offset: int
) -> None:
    body = json.dumps([event()]).encode()
    response = client.post("/hooks/sendgrid", content=body, headers=signed(keys, body, time.time() + offset))
    assert response.status_code == 403 and "tolerance" in response.json()["error"] and r.dbsize() == 0


def test_an_oversized_body_is_refused_unread(client: TestClient, keys: WebhookKeys, r: redis.Redis) -> None:
    body = json.dumps([event(reason="x" * 1000) for _ in range(100)]).encode()
    assert client.post("/hooks/sendgrid", content=body, headers=signed(keys, body)).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield from (body[i : i + 4096] for i in range(0, len(body), 4096))

    assert client.post("/hooks/sendgrid", content=chunks(), headers=signed(keys, body)).status_code == 413
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"event": "delivered"}', b"[" * 50_000, b"\xff\xfe[]", b""],
    ids=["not-json", "an-object", "too-deep", "not-utf8", "empty"],
)
def test_signed_but_unreadable_bodies_are_4xx(
    client: TestClient, keys: WebhookKeys, r: redis.Redis, body: bytes
) -> None:
    response = client.post("/hooks/sendgrid", content=body, headers=signed(keys, body))
    assert response.status_code in (400, 403) and r.dbsize() == 0


@pytest.mark.parametrize(
    "bad",
    [
        "a string",
        None,
        {"event": "delivered"},
        event(event="teleported"),
        event(email=["ada@example.com"]),
        event(timestamp="yesterday"),
        event(timestamp=True),
        event(sg_event_id={"$gt": ""}),
        event(sg_event_id="x" * 500),
        event(reason=42),
        event(switchboard_delivery_id=["email:1"]),
    ],
    ids=lambda v: str(v)[:30],
)
def test_malformed_events_are_rejected_alone(client: TestClient, keys: WebhookKeys, r: redis.Redis, bad: Any) -> None:
    body = json.dumps([bad, event()]).encode()
    response = client.post("/hooks/sendgrid", content=body, headers=signed(keys, body))
    assert response.status_code == 200 and response.json() == {"accepted": 1, "ignored": 0, "rejected": 1}
    [good] = published(r)
    assert good["status"] == "delivered"


def test_redis_down_answers_503_so_the_provider_retries(keys: WebhookKeys) -> None:
    bus = Bus(settings=BusSettings(redis_url="redis://127.0.0.1:9/0", publish_timeout=0.2))
    with TestClient(create_hooks_app(bus, settings_for(keys)), base_url=PUBLIC) as c:
        body = json.dumps([event()]).encode()
        assert c.post("/hooks/sendgrid", content=body, headers=signed(keys, body)).status_code == 503


def test_only_post_and_only_the_hooks(client: TestClient) -> None:
    assert client.get("/hooks/sendgrid").status_code == 405
    assert client.post("/hooks/other").status_code == 404
    assert client.get("/healthz").text == "ok\n"


# --- Twilio ---------------------------------------------------------------------------
STATUS = {"MessageSid": SID, "MessageStatus": "delivered", "To": "+14155550123", "AccountSid": "AC" + "b" * 32}


def test_a_signed_status_callback_is_published(client: TestClient, r: redis.Redis) -> None:
    path = "/hooks/twilio/status?delivery=sms%3Acode-1"
    response = twilio_post(client, path, {**STATUS, "MessageStatus": "undelivered", "ErrorCode": "30005"})
    assert response.status_code == 204
    [status] = published(r)
    assert status["delivery_id"] == "sms:code-1" and status["event_id"] == f"{SID}:undelivered"
    assert status["recipient"] == "+1415*****23" and status["suppress"] is True and status["code"] == "30005"


def test_twilio_requests_signed_wrongly_are_refused(client: TestClient, r: redis.Redis) -> None:
    path = "/hooks/twilio/status?delivery=sms%3Acode-1"
    assert client.post(path, content=urlencode(STATUS).encode()).status_code == 403
    assert twilio_post(client, path, STATUS, token="another-token").status_code == 403
    # Signed for another delivery id, replayed against this one.
    other = f"{PUBLIC}/hooks/twilio/status?delivery=sms%3Aother"
    assert twilio_post(client, path, STATUS, url=other).status_code == 403
    # Signed for the address it was sent to, not the public URL Twilio calls.
    assert twilio_post(client, path, STATUS, url=f"http://127.0.0.1:8485{path}").status_code == 403
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    "params",
    [
        {**STATUS, "MessageStatus": "exploded"},
        {**STATUS, "MessageSid": "not-a-sid"},
        {**STATUS, "To": "ada@example.com"},
        {**STATUS, "ErrorCode": "thirty"},
        {"MessageStatus": "delivered"},
    ],
    ids=["unknown-status", "bad-sid", "bad-to", "bad-code", "missing"],
)
def test_signed_but_malformed_callbacks_publish_nothing(
    client: TestClient, r: redis.Redis, params: dict[str, str]
) -> None:
    assert twilio_post(client, "/hooks/twilio/status", params).status_code == 204
    assert r.dbsize() == 0


def test_inbound_stop_is_published_and_other_texts_are_not(client: TestClient, r: redis.Redis) -> None:
    inbound = {"MessageSid": SID, "From": "+14155550123", "To": "+15550001111", "Body": "hello there"}
    response = twilio_post(client, "/hooks/twilio/inbound", inbound)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    assert r.dbsize() == 0
    assert twilio_post(client, "/hooks/twilio/inbound", {**inbound, "Body": "Stop"}).status_code == 200
    [stop] = published(r)
    assert stop["status"] == "opted_out" and stop["suppress"] is True and stop["recipient"] == "+1415*****23"


def test_a_form_with_too_many_fields_is_refused(client: TestClient, r: redis.Redis) -> None:
    params = {f"f{i}": "x" for i in range(500)}
    assert twilio_post(client, "/hooks/twilio/status", params).status_code == 403
    assert r.dbsize() == 0


# --- starting -------------------------------------------------------------------------
def test_the_receiver_refuses_settings_it_cannot_verify_with(redis_url: str, keys: WebhookKeys) -> None:
    bus = Bus(redis_url)
    with pytest.raises(SettingsError, match="public_url"):
        create_hooks_app(bus, settings_for(keys, public_url=None))
    with pytest.raises(SettingsError, match="webhook_public_key"):
        create_hooks_app(bus, settings_for(keys, sendgrid={}))
    with pytest.raises(SettingsError, match="auth_token"):
        create_hooks_app(bus, settings_for(keys, twilio={}))
    with pytest.raises(SettingsError, match="not a public key"):
        create_hooks_app(bus, settings_for(keys, sendgrid={"webhook_public_key": "bm9wZQ=="}))
    # One hook only needs its own secret.
    create_hooks_app(bus, settings_for(keys, twilio={}, hooks={"enabled": ["sendgrid"]}))
    bus.close()


def test_switchboard_hooks_says_in_one_line_why_it_does_not_start(
    capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('[switchboard]\n[switchboard.twilio]\nauth_token = "t0ken-for-the-cli-test"\n')
    run = CliRun(main, capsys, "--redis-url", redis_url, "--settings", str(settings))
    code, _, err = run("hooks")
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "public_url" in err and "t0ken" not in err


# --- publishing -------------------------------------------------------------------------
def test_concurrent_requests_share_a_publish_round_trip(redis_url: str, r: redis.Redis) -> None:
    import asyncio

    from switchboard.hooks.coalescing import Coalescer

    bus = Bus(redis_url)
    coalescer = Coalescer(bus)

    async def requests() -> None:
        await coalescer.publish([("warm", {"n": -1})])  # the connection and the queue's registration
        r.config_resetstat()
        await asyncio.gather(*(coalescer.publish([("e", {"n": n}), ("e", {"n": n})]) for n in range(20)))

    asyncio.run(requests())
    assert sorted(e["n"] for e in published(r))[1:] == sorted(list(range(20)) * 2)
    pushes = int(r.info("commandstats")["cmdstat_rpush"]["calls"])
    assert 1 <= pushes < 20  # the first request's publish, then the rest together
    bus.close()


def test_a_failed_shared_publish_fails_every_request_waiting_on_it() -> None:
    import asyncio

    from bus.errors import RedisUnavailable
    from switchboard.hooks.coalescing import Coalescer

    bus = Bus(settings=BusSettings(redis_url="redis://127.0.0.1:9/0", publish_timeout=0.2))
    coalescer = Coalescer(bus)

    async def requests() -> list[BaseException | None]:
        return await asyncio.gather(*(coalescer.publish([("e", {"n": n})]) for n in range(5)), return_exceptions=True)

    outcomes = asyncio.run(requests())
    assert all(isinstance(outcome, RedisUnavailable) for outcome in outcomes)


def test_a_client_hanging_up_mid_body_is_not_a_500(redis_url: str, keys: WebhookKeys, r: redis.Redis) -> None:
    import asyncio

    app = create_hooks_app(Bus(redis_url), settings_for(keys))
    arrivals: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"[", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return arrivals.pop(0)

    sent = asyncio.run(raw_post(app, "/hooks/sendgrid", receive))
    assert sent[0]["status"] == 400 and r.dbsize() == 0


@dataclass
class Served:
    """A ``switchboard hooks`` process serving on ``base``; its output once it has stopped."""

    base: str
    opener: urllib.request.OpenerDirector
    returncode: int | None = None
    output: str = ""


@contextmanager
def hooks_process(settings: Path, redis_url: str, port: int) -> Iterator[Served]:
    """``switchboard hooks`` in a process of its own, healthy; SIGTERM at the end of the block."""
    command = [sys.executable, "-m", "switchboard.cli", "hooks", "--settings", str(settings), "--redis-url", redis_url]
    env = {**os.environ, "NO_PROXY": "127.0.0.1"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", urllib.request.build_opener(urllib.request.ProxyHandler({})))
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(process.stdout.read().decode() if process.stdout else "exited")
            try:
                return bool(served.opener.open(f"{served.base}/healthz", timeout=1).status == 200)
            except OSError:
                return False

        wait_for(healthy, timeout=20, message="switchboard hooks did not start")
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        served.output = process.communicate(timeout=20)[0].decode()
        served.returncode = process.returncode


def test_switchboard_hooks_serves_until_sigterm(redis_url: str, keys: WebhookKeys, tmp_path: Path) -> None:
    port = free_port()
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[switchboard]\npublic_url = "{PUBLIC}"\n[switchboard.sendgrid]\nwebhook_public_key = "{keys.public_key}"\n'
        f'[switchboard.twilio]\nauth_token = "{TOKEN}"\n[switchboard.hooks]\nport = {port}\n'
    )
    with hooks_process(settings, redis_url, port) as served:
        body = json.dumps([event()]).encode()
        request = urllib.request.Request(
            f"{served.base}/hooks/sendgrid", data=body, headers=signed(keys, body), method="POST"
        )
        assert served.opener.open(request, timeout=5).status == 200
    # uvicorn finishes its requests, then re-raises the signal it caught (exit status -SIGTERM).
    assert served.returncode in (0, -signal.SIGTERM) and "Finished server process" in served.output, served.output
    assert TOKEN not in served.output and keys.public_key not in served.output


# --- unsubscribe links alone ----------------------------------------------------------------
UNSUBSCRIBE_ONLY: dict[str, Any] = {"sendgrid": {}, "twilio": {}, "hooks": {"enabled": []}}


def test_the_unsubscribe_links_alone_are_served_without_a_provider_webhook(redis_url: str, keys: WebhookKeys) -> None:
    from switchboard.unsubscribe import Unsubscribe, UnsubscribeTokens

    bus = Bus(redis_url)
    settings = settings_for(keys, **UNSUBSCRIBE_ONLY, unsubscribe={"secret": "u" * 40})
    token = UnsubscribeTokens("u" * 40, max_age=3600).issue(Unsubscribe("to:abc", "marketing", "email"))
    with TestClient(create_hooks_app(bus, settings), base_url=PUBLIC) as c:
        assert c.post("/hooks/sendgrid", content=b"[]").status_code == 404
        assert c.post("/hooks/twilio/status").status_code == 404
        assert c.get(f"/unsubscribe/{token}").status_code == 200
        assert c.post("/unsubscribe/forged").status_code == 400
        assert c.get("/healthz").status_code == 200
    bus.close()


def test_nothing_to_serve_or_no_public_url_is_refused(redis_url: str, keys: WebhookKeys) -> None:
    bus = Bus(redis_url)
    with pytest.raises(SettingsError, match="nothing to serve"):
        create_hooks_app(bus, settings_for(keys, **UNSUBSCRIBE_ONLY))
    with pytest.raises(SettingsError, match="public_url"):
        create_hooks_app(bus, settings_for(keys, **UNSUBSCRIBE_ONLY, unsubscribe={"secret": "u" * 40}, public_url=None))
    bus.close()


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ('public_url = "https://x.example"\n[switchboard.hooks]\nenabled = []\n', "nothing to serve"),
        (
            '[switchboard.unsubscribe]\nsecret = "s3cret-for-the-cli-test-0123456789"\n'
            "[switchboard.hooks]\nenabled = []\n",
            "public_url",
        ),
    ],
)
def test_switchboard_hooks_with_nothing_to_serve_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path, toml: str, said: str
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(f"[switchboard]\n{toml}")
    code, _, err = CliRun(main, capsys, "--redis-url", redis_url, "--settings", str(settings))("hooks")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert said in err and "s3cret" not in err


def test_switchboard_hooks_serves_the_unsubscribe_links_alone(redis_url: str, tmp_path: Path) -> None:
    from switchboard.unsubscribe import Unsubscribe, UnsubscribeTokens

    port, secret = free_port(), "u" * 40
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[switchboard]\npublic_url = "{PUBLIC}"\n[switchboard.unsubscribe]\nsecret = "{secret}"\n'
        f"[switchboard.hooks]\nenabled = []\nport = {port}\n"
    )
    with hooks_process(settings, redis_url, port) as served:
        token = UnsubscribeTokens(secret, max_age=3600).issue(Unsubscribe("to:abc", "marketing", "email"))
        assert served.opener.open(f"{served.base}/unsubscribe/{token}", timeout=5).status == 200
        with pytest.raises(urllib.error.HTTPError) as missing:
            post = urllib.request.Request(f"{served.base}/hooks/sendgrid", data=b"[]", method="POST")
            served.opener.open(post, timeout=5)
        assert missing.value.code == 404
    assert "unsubscribe links" in served.output and secret not in served.output, served.output
