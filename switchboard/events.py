"""``send_email``, ``send_sms`` and ``send_push``: the contract publishing apps rely on.

Each event is a pydantic model; apps in any language publish the same JSON as the
event's attributes. ``schema_version`` lets the contract grow: version 1 is this one.
Content is either a template (name + data) or inline; the switchboard alone renders it.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from switchboard.channels import Channel
from switchboard.errors import SwitchboardError
from switchboard.quiet_hours import zone
from switchboard.settings import describe, problems_of

_SPACE = re.compile(r"\s")
"""Whitespace as ``str.isspace`` sees it (the same Unicode test), found in C."""

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
LOCALE = re.compile(r"^[a-z]{2}(_[A-Z]{2})?$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
RESERVED_HEADERS = {"to", "from", "cc", "bcc", "subject", "reply-to", "content-type", "sender"}
MAX_EMAIL_RECIPIENTS = 1000  # SendGrid's limit per request, to + cc + bcc
MAX_SMS_BODY = 1600  # Twilio's limit


class InvalidNotification(SwitchboardError):
    """An event that does not fit its model: the message names every bad field (``errors``: one each)."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors if errors is not None else [message]


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Notification(BaseModel):
    """Fields every notification event has."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, str_strip_whitespace=True)

    EVENT_TYPE: ClassVar[str]
    CHANNEL: ClassVar[Channel]

    schema_version: Literal[1] = 1
    template: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[a-z0-9_]+$")
    data: dict[str, Any] = Field(default_factory=dict)
    locale: str | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    send_at: datetime | None = None
    timezone: str | None = Field(default=None, max_length=64)
    """The recipient's IANA timezone ("Europe/Paris"), for quiet hours."""
    priority: Literal["normal", "high"] = "normal"
    """"high" sends through quiet hours (what cannot wait: a delivery at the door)."""
    category: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    """What an inline (template-less) message is for (a template names its own): preferences apply."""
    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    """The publisher's id of the person: their preferences follow them across addresses."""

    @model_validator(mode="after")
    def _one_category(self) -> Notification:
        if self.template and self.category:
            raise ValueError("a template names its own category (template.toml): leave out category")
        return self

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and zone(value) is None:
            raise ValueError("timezone must be an IANA name like 'Europe/Paris'")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and not LOCALE.match(value):
            raise ValueError("locale must look like 'fr' or 'fr_CA'")
        return value

    @field_validator("send_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("send_at needs a timezone (e.g. 2026-12-01T09:00:00Z)")
        return value

    def to_attributes(self) -> dict[str, Any]:
        """The event's attributes as published (JSON-ready, aliases used, defaults left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)

    def recipients(self) -> list[str]:
        """Whom the message is addressed to (``to``)."""
        raise NotImplementedError

    def all_recipients(self) -> list[str]:
        """Everyone the message goes to: every one of them is checked against suppressions."""
        return self.recipients()

    def fingerprint(self) -> str:
        """What the message is (everything but its idempotency key): the same key on another
        message is a conflict, not a duplicate."""
        content = self.model_dump(mode="json", by_alias=True, exclude={"idempotency_key"})
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]


class SendEmail(Notification):
    """An email: to one or many addresses, from a template or inline subject + text/html."""

    EVENT_TYPE: ClassVar[str] = "send_email"
    CHANNEL: ClassVar[Channel] = Channel.EMAIL

    to: list[EmailStr] = Field(min_length=1)
    cc: list[EmailStr] = Field(default_factory=list)
    bcc: list[EmailStr] = Field(default_factory=list)
    reply_to: EmailStr | None = None
    from_: str | None = Field(default=None, alias="from", validation_alias=AliasChoices("from", "from_"))
    subject: str | None = Field(default=None, max_length=998)
    text: str | None = None
    html: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    categories: list[str] = Field(
        default_factory=list, max_length=10, validation_alias=AliasChoices("categories", "tags")
    )

    _to_list = field_validator("to", "cc", "bcc", mode="before")(_listify)

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not HEADER_NAME.match(name):
                raise ValueError(f"header name {name!r} is not a valid header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the switchboard, not by events")
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name!r} contains a line break")
        return headers

    @model_validator(mode="after")
    def _content(self) -> SendEmail:
        inline = self.subject is not None or self.text is not None or self.html is not None
        if self.template and inline:
            raise ValueError("give a template or inline subject/text/html, not both")
        if not self.template:
            if not self.subject:
                raise ValueError("an inline email needs a subject (or give a template)")
            if not self.text and not self.html:
                raise ValueError("an inline email needs text and/or html (or give a template)")
        if len(self.to) + len(self.cc) + len(self.bcc) > MAX_EMAIL_RECIPIENTS:
            raise ValueError(f"at most {MAX_EMAIL_RECIPIENTS} recipients in to + cc + bcc")
        return self

    def recipients(self) -> list[str]:
        return [str(a) for a in self.to]

    def all_recipients(self) -> list[str]:
        return [str(a) for a in (*self.to, *self.cc, *self.bcc)]


class SendSms(Notification):
    """An SMS to one E.164 number, from a template or an inline body."""

    EVENT_TYPE: ClassVar[str] = "send_sms"
    CHANNEL: ClassVar[Channel] = Channel.SMS

    to: str
    body: str | None = Field(default=None, min_length=1, max_length=MAX_SMS_BODY)

    @field_validator("to")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not E164.match(value):
            raise ValueError("to must be an E.164 number such as +14155550123")
        return value

    @model_validator(mode="after")
    def _content(self) -> SendSms:
        if bool(self.template) == bool(self.body):
            raise ValueError("give exactly one of template and body")
        return self

    def recipients(self) -> list[str]:
        return [self.to]


class SendPush(Notification):
    """A push to device tokens or a topic, from a template or inline title + body."""

    EVENT_TYPE: ClassVar[str] = "send_push"
    CHANNEL: ClassVar[Channel] = Channel.PUSH

    to: list[str] = Field(default_factory=list, max_length=500)
    topic: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9-_.~%]{1,900}$")
    title: str | None = Field(default=None, max_length=200)
    body: str | None = Field(default=None, max_length=2000)
    data_payload: dict[str, str] = Field(default_factory=dict)
    image: str | None = Field(default=None, pattern=r"^https://")

    _to_list = field_validator("to", mode="before")(_listify)

    @field_validator("to")
    @classmethod
    def _tokens(cls, tokens: list[str]) -> list[str]:
        if any(not token or len(token) > 4096 or _SPACE.search(token) for token in tokens):
            raise ValueError("device tokens must be non-empty strings without spaces")
        return tokens

    @model_validator(mode="after")
    def _content(self) -> SendPush:
        if bool(self.to) == (self.topic is not None):
            raise ValueError("give device tokens in 'to' or a 'topic', exactly one of the two")
        inline = self.title is not None or self.body is not None
        if self.template and inline:
            raise ValueError("give a template or inline title/body, not both")
        if not self.template and not (self.title and self.body):
            raise ValueError("an inline push needs a title and a body (or give a template)")
        return self

    def recipients(self) -> list[str]:
        return list(self.to) if self.to else [f"topic:{self.topic}"]


EVENTS: dict[str, type[Notification]] = {cls.EVENT_TYPE: cls for cls in (SendEmail, SendSms, SendPush)}
BY_CHANNEL: dict[Channel, type[Notification]] = {cls.CHANNEL: cls for cls in (SendEmail, SendSms, SendPush)}


def check_recipient(channel: Channel | str, recipient: str) -> str:
    """One recipient as the channel's events take it (an address, an E.164 number, a device token);
    InvalidNotification says what is wrong, without repeating it."""
    model: type[Notification] = BY_CHANNEL[Channel(channel)]
    content: dict[str, Any] = {
        Channel.EMAIL: {"subject": "s", "text": "t"},
        Channel.SMS: {"body": "b"},
        Channel.PUSH: {"title": "t", "body": "b"},
    }[Channel(channel)]
    try:
        model.model_validate({"to": recipient, **content})
    except ValidationError as exc:
        reasons = "; ".join(problems_of(exc, str(channel)))
        raise InvalidNotification(f"not a {channel} recipient: {reasons}") from None
    return recipient.strip()


def parse_event(event_type: str, attributes: dict[str, Any]) -> Notification:
    """The notification inside a bus event (its ``bus_*`` metadata set aside), or InvalidNotification."""
    model = EVENTS.get(event_type)
    if model is None:
        raise InvalidNotification(f"unknown notification event {event_type!r}")
    fields = {k: v for k, v in attributes.items() if not k.startswith("bus_")}
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidNotification(describe(exc, event_type), problems_of(exc, event_type)) from None
