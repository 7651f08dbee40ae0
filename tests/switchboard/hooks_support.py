"""A switchboard with its webhook receiver served on a real port, the emulators calling it back."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from bus import Bus
from bus.backend.embedded import free_port
from switchboard.app import Switchboard
from switchboard.hooks.app import create_hooks_app
from switchboard.settings import SwitchboardSettings
from tests.bus.helpers import drain
from tests.support.emulators import SendGridEmulator, TwilioEmulator
from tests.support.emulators.webhooks import WebhookKeys
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
SENDER = "Acme <no-reply@acme.example>"


@contextmanager
def serving(app: Any, port: int) -> Iterator[str]:
    """The ASGI app on ``port`` (loopback) in a background thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="hooks", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=10, message="the receiver did not start")
    if not server.started:
        raise RuntimeError("the receiver did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def hooks_settings(
    sendgrid: SendGridEmulator, twilio: TwilioEmulator, keys: WebhookKeys, public_url: str, **overrides: Any
) -> SwitchboardSettings:
    sections: dict[str, Any] = {
        "templates_dir": str(ROOT / "templates"),
        "senders": [SENDER],
        "public_url": public_url,
        "sendgrid": {
            "api_key": sendgrid.api_key,
            "base_url": sendgrid.url,
            "timeout": 2,
            "webhook_public_key": keys.public_key,
        },
        "twilio": {
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "from_number": "+15550001111",
            "base_url": twilio.url,
            "timeout": 2,
        },
        "retry": {"max_retries": 2, "base_delay": 0.05, "max_delay": 0.2},
        **overrides,
    }
    return SwitchboardSettings.from_table(sections)


@dataclass
class Stack:
    """The worker side (``board``), the receiver's URL and the emulators that call it."""

    board: Switchboard
    url: str
    sendgrid: SendGridEmulator
    twilio: TwilioEmulator

    @property
    def bus(self) -> Bus:
        return self.board.bus

    def run(self) -> None:
        """Drive and ride everything queued (sends, provider events, outcome listeners)."""
        drain(self.bus, ["bus_incoming", *self.bus.app_queues()])

    def deliver_webhooks(self) -> None:
        """The providers call back; then the worker applies what the receiver published."""
        answers = self.sendgrid.flush_webhooks() + self.twilio.flush_webhooks()
        assert all(a.status in (200, 204) for a in answers), [(a.status, a.body) for a in answers]
        self.run()

    def listen(self, *event_types: str) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        app = self.bus.dispatch("watcher")
        for event_type in event_types:
            app.add(event_type, seen.append)
        self.bus.subscribe_all()
        return seen


@contextmanager
def stack(
    redis_url: str, sendgrid: SendGridEmulator, twilio: TwilioEmulator, keys: WebhookKeys, **overrides: Any
) -> Iterator[Stack]:
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    settings = hooks_settings(sendgrid, twilio, keys, public_url, **overrides)
    bus = Bus(redis_url)
    board = Switchboard(bus, settings)
    bus.subscribe_all()
    receiver_bus = Bus(redis_url)
    with serving(create_hooks_app(receiver_bus, settings), port) as url:
        sendgrid.send_webhooks_to(f"{url}/hooks/sendgrid", keys)
        try:
            yield Stack(board, url, sendgrid, twilio)
        finally:
            board.close()
            receiver_bus.close()


Listen = Callable[..., list[dict[str, Any]]]


async def raw_post(app: Any, path: str, receive: Callable[[], Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """POST to ``app`` as an ASGI server would, the body coming from ``receive`` (a client that
    trickles it or hangs up, which an HTTP test client cannot do); the messages sent back."""
    sent: list[dict[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"hooks.example.com")],
        "scheme": "https",
        "server": ("hooks.example.com", 443),
        "client": ("127.0.0.1", 5),
    }
    await app(scope, receive, send)
    return sent
