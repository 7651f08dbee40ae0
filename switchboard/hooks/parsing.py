"""Verified webhook bodies read into ``provider_status`` events, one per provider event.

Everything in a body is hostile until read here: each event is checked field by field
(types, known event names), recipients leave as a mask and a digest (never in clear on the
bus), provider texts are masked and cut short. An event that does not fit is counted as
rejected and left out; one that carries nothing for a delivery (opens, clicks) is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from switchboard.callbacks import DELIVERY_ARG, DELIVERY_PARAM
from switchboard.channels import Channel
from switchboard.privacy import mask, mask_text, recipient_digest

EVENT_TYPE = "provider_status"
REASON_LENGTH = 300
"""Characters of a provider's reason kept (bounce texts quote whole SMTP conversations)."""
_ID = re.compile(r"^[A-Za-z0-9._:@+=/-]{1,200}$")
_DELIVERY_ID = re.compile(r"^(email|sms):[^\x00-\x1f\x7f]{1,200}$")
"""``<channel>:<idempotency key or bus_id>``: any printable key the publisher chose."""
_TWILIO_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# SendGrid's event -> our status; None: nothing for the delivery record (opens, clicks).
SENDGRID_EVENTS: dict[str, str | None] = {
    "processed": "accepted",
    "delivered": "delivered",
    "deferred": "deferred",
    "bounce": "bounced",
    "dropped": "dropped",
    "spamreport": "complained",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
    "open": None,
    "click": None,
    "group_resubscribe": None,
}
# Twilio's MessageStatus -> our status.
TWILIO_STATUSES = {
    "accepted": "accepted",
    "scheduled": "accepted",
    "queued": "accepted",
    "sending": "accepted",
    "sent": "accepted",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "undelivered",
    "canceled": "undelivered",
}
PERMANENT_SMS_CODES = frozenset({"30004", "30005", "30006"})
"""Twilio delivery errors about the number itself: blocked by the recipient, unknown number,
landline. 30003 (handset off), 30007 (carrier filtered the content) and 30008 pass."""
IGNORED, REJECTED = "ignored", "rejected"
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})


@dataclass(slots=True)
class Parsed:
    """A request's provider events, and how many were left out."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0
    rejected: int = 0

    def summary(self) -> dict[str, int]:
        return {"accepted": len(self.events), "ignored": self.ignored, "rejected": self.rejected}


def sendgrid_events(batch: Any) -> Parsed:
    """SendGrid's JSON array of events (raises ValueError when the body is not an array)."""
    if not isinstance(batch, list):
        raise ValueError("the Event Webhook posts a JSON array")
    parsed = Parsed()
    for item in batch:
        event = _sendgrid_event(item)
        if event == REJECTED:
            parsed.rejected += 1
        elif event == IGNORED:
            parsed.ignored += 1
        elif isinstance(event, dict):
            parsed.events.append(event)
    return parsed


def _sendgrid_event(item: Any) -> dict[str, Any] | str:
    """The event's attributes, else IGNORED (nothing for a delivery) or REJECTED (does not fit)."""
    if not isinstance(item, dict):
        return REJECTED
    name, email, event_id = item.get("event"), item.get("email"), item.get("sg_event_id")
    stamp = item.get("timestamp")
    if not isinstance(name, str) or name not in SENDGRID_EVENTS:
        return REJECTED
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        return REJECTED
    if not isinstance(event_id, str) or not _ID.match(event_id):
        return REJECTED
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not 0 < stamp < 1e11:
        return REJECTED
    status = SENDGRID_EVENTS[name]
    if status is None:
        return IGNORED
    optional = {key: item.get(key) for key in ("sg_message_id", DELIVERY_ARG, "reason", "response", "type", "status")}
    if any(value is not None and not isinstance(value, str) for value in optional.values()):
        return REJECTED
    message_id = optional["sg_message_id"]
    delivery_id = optional[DELIVERY_ARG]
    bounce_type = optional["type"] if name == "bounce" else None
    hard = name == "bounce" and bounce_type != "blocked"
    return _event(
        provider="sendgrid",
        channel=Channel.EMAIL,
        event_id=event_id,
        event=name,
        status=status,
        at=float(stamp),
        recipient=email,
        delivery_id=delivery_id if delivery_id and _DELIVERY_ID.match(delivery_id) else None,
        message_id=message_id.split(".")[0] if message_id else None,
        reason=optional["reason"] or optional["response"],
        code=bounce_type or optional["status"],
        suppress=hard or name in ("spamreport", "unsubscribe", "group_unsubscribe"),
    )


def twilio_status(form: Mapping[str, Sequence[str]], query: Mapping[str, Sequence[str]], now: float) -> Parsed:
    """One StatusCallback (form fields as posted, the callback URL's query)."""
    sid, status, to, code = (_one(form, k) for k in ("MessageSid", "MessageStatus", "To", "ErrorCode"))
    delivery_id = _one(query, DELIVERY_PARAM)
    if sid is None or not _TWILIO_SID.match(sid) or status not in TWILIO_STATUSES:
        return Parsed(rejected=1)
    if to is None or not _E164.match(to) or (code and not code.isdigit()):
        return Parsed(rejected=1)
    ours = TWILIO_STATUSES[status]
    event = _event(
        provider="twilio",
        channel=Channel.SMS,
        event_id=f"{sid}:{status}",
        event=status,
        status=ours,
        at=now,
        recipient=to,
        delivery_id=delivery_id if delivery_id and _DELIVERY_ID.match(delivery_id) else None,
        message_id=sid,
        reason=f"Twilio error {code}" if code else None,
        code=code or None,
        suppress=ours == "undelivered" and code in PERMANENT_SMS_CODES,
    )
    return Parsed(events=[event])


def twilio_inbound(form: Mapping[str, Sequence[str]], now: float) -> Parsed:
    """An incoming SMS: an opt-out (STOP...) or opt-in (START...) keyword; anything else is ignored."""
    sid, sender, body = (_one(form, k) for k in ("MessageSid", "From", "Body"))
    if sid is None or not _TWILIO_SID.match(sid) or sender is None or not _E164.match(sender) or body is None:
        return Parsed(rejected=1)
    word = body.strip().upper()
    if word not in STOP_WORDS and word not in START_WORDS:
        return Parsed(ignored=1)
    event = _event(
        provider="twilio",
        channel=Channel.SMS,
        event_id=sid,
        event=f"inbound {word}",
        status="opted_out" if word in STOP_WORDS else "opted_in",
        at=now,
        recipient=sender,
        delivery_id=None,
        message_id=None,
        reason=f"replied {word}",
        code=None,
        suppress=word in STOP_WORDS,
    )
    return Parsed(events=[event])


def _event(
    *,
    provider: str,
    channel: Channel,
    event_id: str,
    event: str,
    status: str,
    at: float,
    recipient: str,
    delivery_id: str | None,
    message_id: str | None,
    reason: str | None,
    code: str | None,
    suppress: bool,
) -> dict[str, Any]:
    """The attributes of one ``provider_status`` event: the recipient only masked and digested."""
    attributes: dict[str, Any] = {
        "provider": provider,
        "channel": channel.value,
        "event_id": event_id,
        "event": event,
        "status": status,
        "at": at,
        "recipient": mask(recipient),
        "recipient_digest": recipient_digest(recipient),
        "delivery_id": delivery_id,
        "message_id": message_id,
        # Any address or number in it is masked (a pattern compiled once: a per-recipient one costs
        # a regex compilation per event).
        "reason": mask_text(reason)[:REASON_LENGTH] if reason else None,
        "code": code[:40] if code else None,
        "suppress": suppress,
    }
    return {k: v for k, v in attributes.items() if v is not None}


def _one(values: Mapping[str, Sequence[str]], name: str) -> str | None:
    """A field given once (a repeated one is as good as missing)."""
    found = values.get(name)
    return found[0] if found is not None and len(found) == 1 else None
