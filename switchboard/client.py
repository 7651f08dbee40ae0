"""For publishing apps: validate a notification with the switchboard's own models and publish it.

    from switchboard.client import send_email
    send_email(to="ada@example.com", template="welcome", data={"first_name": "Ada", ...})

Apps in other languages publish the same JSON as ``send_email``/``send_sms``/``send_push``.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from bus import Bus, default_bus
from switchboard.events import InvalidNotification, Notification, SendEmail, SendPush, SendSms
from switchboard.settings import describe


def send_email(*, bus: Bus | None = None, **fields: Any) -> str:
    """Publish a ``send_email`` event (``from`` is spelled ``from_`` here); returns its ``bus_id``."""
    return _publish(SendEmail, bus, fields)


def send_sms(*, bus: Bus | None = None, **fields: Any) -> str:
    """Publish a ``send_sms`` event; returns its ``bus_id``."""
    return _publish(SendSms, bus, fields)


def send_push(*, bus: Bus | None = None, **fields: Any) -> str:
    """Publish a ``send_push`` event; returns its ``bus_id``."""
    return _publish(SendPush, bus, fields)


def _publish(model: type[Notification], bus: Bus | None, fields: dict[str, Any]) -> str:
    try:
        notification = model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidNotification(describe(exc, model.EVENT_TYPE)) from None
    target = bus or default_bus()
    attributes = {"schema_version": 1, **notification.to_attributes()}
    if notification.send_at is not None and notification.send_at.timestamp() > time.time():
        return target.publish_at(notification.send_at, model.EVENT_TYPE, attributes)
    return target.publish(model.EVENT_TYPE, attributes)
