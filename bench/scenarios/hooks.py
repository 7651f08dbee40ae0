"""``hooks``: provider webhooks verified and applied per second (issue 18).

The receiver: SendGrid batches of 1,000 events and Twilio callbacks of one event each, signed
as the providers sign them, sent through the receiver's ASGI app (verify, read, one
``publish_many`` round trip to the benchmark's server), each against a bare Starlette
endpoint doing only the signature check, measured the same way in the same run. Requests go
to the app in-process, 8 at a time on one event loop (an HTTP server in front costs both the
same). Targets: >= 5,000 SendGrid events/s and >= 1,000 Twilio callbacks/s, each
>= 0.7x its bare endpoint. The worker: ``provider_status`` events applied to accepted
deliveries per second (record, timeline, outcome event, counters) by one worker with 8
threads (as ``switchboard run``), against the same events ridden by a handler that does
nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from bench.harness import Bench
from bus import Bus
from bus.settings import BusSettings, WorkerSettings
from switchboard.app import Switchboard
from switchboard.deliveries import Deliveries
from switchboard.hooks.app import create_hooks_app
from switchboard.hooks.parsing import EVENT_TYPE
from switchboard.hooks.verify import SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, SendGridVerifier, TwilioVerifier
from switchboard.keys import SwitchboardKeys
from switchboard.privacy import recipient_digest
from switchboard.settings import SwitchboardSettings
from tests.support.emulators.webhooks import WebhookKeys, webhook_keys

NAME = "hooks"
PUBLIC = "https://hooks.example.com"
TOKEN = "bench-twilio-auth-token-0123456789"
BATCH = 1000
IN_FLIGHT = 8
SENDGRID = "SendGrid events/s through the receiver (batches of 1,000)"
SENDGRID_BARE = "SendGrid events/s, bare endpoint: signature check only"
TWILIO = "Twilio callbacks/s through the receiver"
TWILIO_BARE = "Twilio callbacks/s, bare endpoint: signature check only"
APPLY = "provider events applied/s by one worker"
APPLY_BARE = "the same events ridden by a no-op handler"
FAST = WorkerSettings(idle_wait=0.05, retry_poll_interval=0.05)

Call = tuple[str, bytes, list[tuple[bytes, bytes]]]
"""A request: target (path and query), body, headers."""


async def _drive(app: Any, calls: list[Call]) -> float:
    """Send ``calls`` through the ASGI app, IN_FLIGHT at a time (as a provider's concurrent
    connections arrive); the seconds they took. Every answer must be 2xx."""
    queue = list(reversed(calls))

    async def client() -> None:
        while queue:
            call = queue.pop()
            status = await _one(app, call)
            if not 200 <= status < 300:
                raise RuntimeError(f"the hooks bench got {status} for {call[0]}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(IN_FLIGHT)))
    return time.perf_counter() - started


async def _one(app: Any, call: Call) -> int:
    target, body, headers = call
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"hooks.example.com"), (b"content-length", str(len(body)).encode()), *headers],
        "server": ("hooks.example.com", 443),
        "client": ("127.0.0.1", 50000),
    }
    status: list[int] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop() if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


def _sendgrid_calls(keys: WebhookKeys, events: int) -> list[Call]:
    calls = []
    for start in range(0, events, BATCH):
        now = int(time.time())
        batch = [
            {
                "email": f"user{n}@example.com",
                "timestamp": now,
                "event": "delivered",
                "sg_event_id": f"bench-{now}-{n}",
                "sg_message_id": f"msg{n}.filter0001.{now}.0",
                "switchboard_delivery_id": f"email:bench-{n}",
                "response": "250 OK",
            }
            for n in range(start, min(start + BATCH, events))
        ]
        body = json.dumps(batch).encode()
        stamp = str(now)
        headers = [
            (SENDGRID_SIGNATURE.lower().encode(), keys.sign(body, stamp).encode()),
            (SENDGRID_TIMESTAMP.lower().encode(), stamp.encode()),
            (b"content-type", b"application/json"),
        ]
        calls.append(("/hooks/sendgrid", body, headers))
    return calls


def _twilio_calls(count: int) -> list[Call]:
    validator = RequestValidator(TOKEN)
    calls = []
    for n in range(count):
        target = f"/hooks/twilio/status?delivery=sms%3Abench-{n}"
        params = {"MessageSid": f"SM{n:032x}", "MessageStatus": "delivered", "To": "+14155550123"}
        signature = validator.compute_signature(f"{PUBLIC}{target}", params)
        headers = [
            (b"x-twilio-signature", signature.encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ]
        calls.append((target, urlencode(params).encode(), headers))
    return calls


def _bare(keys: WebhookKeys) -> Starlette:
    """The floor: the same signature checks, nothing else."""
    sendgrid = SendGridVerifier(keys.public_key, tolerance=300)
    twilio = TwilioVerifier(TOKEN)

    async def sendgrid_hook(request: Request) -> Response:
        body = await request.body()
        sendgrid.check(body, request.headers.get(SENDGRID_SIGNATURE), request.headers.get(SENDGRID_TIMESTAMP))
        return Response(status_code=200)

    async def twilio_hook(request: Request) -> Response:
        form = await request.form()
        params = {k: [str(v) for v in form.getlist(k)] for k in form}
        twilio.check(
            f"{PUBLIC}{request.url.path}?{request.url.query}", params, request.headers.get("x-twilio-signature")
        )
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/hooks/sendgrid", sendgrid_hook, methods=["POST"]),
            Route("/hooks/twilio/status", twilio_hook, methods=["POST"]),
        ]
    )


def _settings(keys: WebhookKeys) -> SwitchboardSettings:
    return SwitchboardSettings.from_table(
        {"public_url": PUBLIC, "sendgrid": {"webhook_public_key": keys.public_key}, "twilio": {"auth_token": TOKEN}}
    )


def _receiver(bench: Bench, keys: WebhookKeys, events: int, callbacks: int) -> dict[str, float]:
    bus = Bus(settings=BusSettings(redis_url=bench.url))
    receiver, bare = create_hooks_app(bus, _settings(keys)), _bare(keys)
    sendgrid_calls, twilio_calls = _sendgrid_calls(keys, events), _twilio_calls(callbacks)

    async def measure() -> dict[str, float]:
        await _drive(receiver, sendgrid_calls[:1] + twilio_calls[:10])  # warm up
        return {
            SENDGRID_BARE: events / await _drive(bare, sendgrid_calls),
            SENDGRID: events / await _drive(receiver, sendgrid_calls),
            TWILIO_BARE: callbacks / await _drive(bare, twilio_calls),
            TWILIO: callbacks / await _drive(receiver, twilio_calls),
        }

    rates = asyncio.run(measure())
    bus.close()
    return rates


def _worker(bench: Bench, keys: WebhookKeys, count: int) -> dict[str, float]:
    """Applied per second: accepted records, then one delivered event each, drained by one worker."""
    settings = _settings(keys)
    bus = Bus(settings=BusSettings(redis_url=bench.url))
    board = Switchboard(bus, settings)
    bus.subscribe_all()
    deliveries = Deliveries(bus.redis, SwitchboardKeys(bus.keys), retention=86400, stale_after=60)
    now = time.time()
    pipe = bus.redis.pipeline(transaction=False)
    for n in range(count):
        initial = {
            "channel": "email",
            "request_id": f"bench-{n}",
            "recipient_digests": recipient_digest(f"user{n}@example.com"),
        }
        deliveries.queue_claim(pipe, f"email:bench-{n}", now, initial)
        deliveries.queue_update(pipe, f"email:bench-{n}", now, status="accepted")
    pipe.execute()
    attributes = [
        {
            "provider": "sendgrid",
            "channel": "email",
            "event_id": f"ev-{n}",
            "event": "delivered",
            "status": "delivered",
            "at": now + 1,
            "recipient": "u***@example.com",
            "recipient_digest": recipient_digest(f"user{n}@example.com"),
            "delivery_id": f"email:bench-{n}",
        }
        for n in range(count)
    ]
    noop = bus.dispatch("bench_noop")
    noop.add("bench_status", lambda attributes: None, queue="status")
    bus.subscribe_all()
    rates = {}
    for name, event_type, queues in (
        (APPLY_BARE, "bench_status", noop.queues),
        (APPLY, EVENT_TYPE, board.queues),
    ):
        bus.publish_many([(event_type, a) for a in attributes])
        bus.worker(["bus_incoming"], burst=True, install_signals=False, settings=FAST).run()  # drive first
        worker = bus.worker(queues, burst=True, install_signals=False, settings=FAST, concurrency=8)
        started = time.perf_counter()
        worker.run()
        rates[name] = worker.processed / (time.perf_counter() - started)
    board.close()
    bus.close()
    return rates


def run(bench: Bench) -> None:
    events = max(BATCH, bench.options.events // BATCH * BATCH)
    callbacks = max(100, bench.options.events // 10)
    keys = webhook_keys()
    for rep in range(bench.options.repeat):
        bench.flush()
        rates = _receiver(bench, keys, events, callbacks)
        bench.flush()
        rates |= _worker(bench, keys, min(events, 20_000))
        targets = {SENDGRID: ">= 5,000 ev/s, >= 0.7x bare", TWILIO: ">= 1,000/s, >= 0.7x bare"}
        for name, rate in rates.items():
            bench.report.add(NAME, name, rate, "ev/s", target=targets.get(name, ""))
        bench.log(
            f"hooks {rep + 1}/{bench.options.repeat}: SendGrid {rates[SENDGRID]:,.0f} ev/s "
            f"(bare {rates[SENDGRID_BARE]:,.0f}), Twilio {rates[TWILIO]:,.0f}/s (bare {rates[TWILIO_BARE]:,.0f}), "
            f"worker {rates[APPLY]:,.0f}/s (no-op {rates[APPLY_BARE]:,.0f})"
        )
    metrics = bench.report.metrics
    for measured, floor in ((SENDGRID, SENDGRID_BARE), (TWILIO, TWILIO_BARE), (APPLY, APPLY_BARE)):
        bench.report.compare(metrics[f"{NAME}/{measured}"], metrics[f"{NAME}/{floor}"], "bare")
    bench.flush()
