"""Putting switchboard state where the pages read it: deliveries, outbox messages, templates."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bus import Bus
from switchboard.app import Switchboard
from switchboard.channels import Channel
from switchboard.deliveries import Deliveries
from switchboard.keys import SwitchboardKeys
from switchboard.privacy import mask, recipient_digest
from switchboard.providers import EmailMessage, PushMessage, SmsMessage
from switchboard.providers.outbox import Outbox, OutboxProvider
from tests.bus.helpers import drain
from tests.switchboard.web.conftest import ROOT, settings_for

WELCOME = {
    "first_name": "Ada",
    "login_url": "https://app.example.com/login",
    "help_url": "https://help.example.com/start",
    "trial_days": 14,
}
# Renders, then asks the sandbox for Python internals: the classic escape attempt.
ESCAPE = "{{ first_name }} {{ ''.__class__.__mro__[1].__subclasses__() }}\n"


def deliveries(bus: Bus) -> Deliveries:
    return Deliveries(bus.redis, SwitchboardKeys(bus.keys), retention=86400, stale_after=60.0)


def outbox(bus: Bus) -> Outbox:
    return Outbox(bus.redis, SwitchboardKeys(bus.keys), size=500)


def record(
    bus: Bus,
    request_id: str,
    *,
    channel: str = "email",
    to: str = "ada@example.com",
    status: str = "sent",
    created: float | None = None,
    **fields: Any,
) -> str:
    """A delivery record as the sender writes it: claimed, then finished; returns its id."""
    delivery_id = f"{channel}:{request_id}"
    now = time.time() if created is None else created
    initial = {"channel": channel, "template": "welcome", "recipients": mask(to), "request_id": request_id}
    initial["recipient_digests"] = recipient_digest(to)
    deliveries(bus).claim(delivery_id, now, initial)
    deliveries(bus).finish(delivery_id, channel, now, status, **fields)
    return delivery_id


def send_to_outbox(message: EmailMessage | SmsMessage | PushMessage, bus: Bus) -> str:
    """What dev mode does with a message; returns the outbox id."""
    channel = {EmailMessage: Channel.EMAIL, SmsMessage: Channel.SMS, PushMessage: Channel.PUSH}[type(message)]
    message_id = OutboxProvider(channel, outbox(bus)).send(message).message_id
    assert message_id
    return message_id


def send_for_real(bus: Bus, *notifications: tuple[str, dict[str, Any]]) -> None:
    """Publish notifications (``("send_email", fields)``...) and let a dev-mode switchboard send them.

    Every channel goes to the outbox, as on a fresh machine; one switchboard per bus, so
    give all of a test's notifications in one call.
    """
    from switchboard.client import send_email, send_push, send_sms

    publish = {"send_email": send_email, "send_sms": send_sms, "send_push": send_push}
    board = Switchboard(bus, settings_for(live=False))
    bus.subscribe_all()
    for event, fields in notifications:
        publish[event](bus=bus, **fields)
    drain(bus, ["bus_incoming", *board.queues])
    board.close()


def templates_with(tmp_path: Path, files: dict[str, str]) -> Path:
    """A copy of the project's templates with some files added or replaced."""
    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", folder)
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder
