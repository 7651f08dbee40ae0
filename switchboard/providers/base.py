"""What every provider shares: the rendered messages, the results, the Provider protocol.

Messages are already rendered (templates are done) and results say what the provider
accepted; failures are never results, they are the errors of ``switchboard.errors``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from switchboard.channels import Channel
from switchboard.errors import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderError,
    SettingsError,
    TransientProviderError,
)


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """One rendered email; ``from_email`` None means the provider's configured sender."""

    to: Sequence[str]
    subject: str
    text: str | None = None
    html: str | None = None
    from_email: str | None = None
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    categories: Sequence[str] = ()
    custom_args: Mapping[str, str] = field(default_factory=dict)
    """Come back in the provider's webhook events (SendGrid): the delivery id."""

    def __post_init__(self) -> None:
        if not self.to:
            raise ValueError("an email needs at least one 'to' recipient")
        if self.text is None and self.html is None:
            raise ValueError("an email needs a text or an html body")


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """One rendered SMS; without ``from_`` or ``messaging_service_sid`` the configured sender is used."""

    to: str
    body: str
    from_: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One rendered push, to device ``tokens`` or to a ``topic`` (exactly one of the two)."""

    tokens: Sequence[str] = ()
    topic: str | None = None
    title: str | None = None
    body: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None

    def __post_init__(self) -> None:
        if bool(self.tokens) == (self.topic is not None):
            raise ValueError("a push goes to device tokens or to a topic, exactly one of the two")
        if self.title is None and self.body is None and not self.data:
            raise ValueError("a push needs a title, a body or data")


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """The provider accepted the message: its id for it, and its own word for the state."""

    provider: str
    message_id: str | None
    status: str = "accepted"
    segments: int | None = None


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What happened to one push target (a device token or a topic)."""

    target: str
    message_id: str | None = None
    error: ProviderError | None = None

    @property
    def delivered(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class PushResult(ProviderResult):
    """A push fanned out to several targets, with each target's outcome.

    Returned when the targets did not all fail alike; ``unregistered`` lists the tokens to
    suppress and ``retry_targets`` the ones worth sending again after ``retry_after``.
    """

    outcomes: tuple[PushOutcome, ...] = ()

    @property
    def delivered(self) -> tuple[str, ...]:
        return tuple(o.target for o in self.outcomes if o.error is None)

    @property
    def failed(self) -> tuple[PushOutcome, ...]:
        return tuple(o for o in self.outcomes if o.error is not None)

    @property
    def unregistered(self) -> tuple[str, ...]:
        """Tokens the provider says are gone or not ours: suppress them."""
        return tuple(
            o.target for o in self.failed if isinstance(o.error, PermanentProviderError) and o.error.recipient_problem
        )

    @property
    def retry_targets(self) -> tuple[str, ...]:
        """Tokens worth another request: failed for a passing reason before FCM got the request
        (one that timed out waiting for FCM may have been delivered: see ``unknown``)."""
        return tuple(
            o.target
            for o in self.failed
            if isinstance(o.error, TransientProviderError) and not isinstance(o.error, AmbiguousProviderError)
        )

    @property
    def unknown(self) -> tuple[str, ...]:
        """Tokens FCM got the request for but never answered about: delivered or not, nobody knows."""
        return tuple(o.target for o in self.failed if isinstance(o.error, AmbiguousProviderError))

    @property
    def retry_after(self) -> float | None:
        waits = [o.error.retry_after for o in self.failed if isinstance(o.error, TransientProviderError)]
        known = [w for w in waits if w is not None]
        return max(known) if known else None


@dataclass(frozen=True, slots=True)
class RecipientRefusal:
    """One recipient of an email that the provider refused, and why."""

    recipient: str
    error: ProviderError


@dataclass(frozen=True, slots=True)
class EmailResult(ProviderResult):
    """An email accepted for some recipients and refused for others (SMTP answers per RCPT TO).

    ``suppress`` lists the recipients refused for good, ``retry_recipients`` those refused for
    a passing reason (a full mailbox, greylisting).
    """

    refused: tuple[RecipientRefusal, ...] = ()

    @property
    def suppress(self) -> tuple[str, ...]:
        return tuple(
            r.recipient
            for r in self.refused
            if isinstance(r.error, PermanentProviderError) and r.error.recipient_problem
        )

    @property
    def retry_recipients(self) -> tuple[str, ...]:
        return tuple(r.recipient for r in self.refused if isinstance(r.error, TransientProviderError))


MessageT_contra = TypeVar("MessageT_contra", contravariant=True)


class Provider(Protocol[MessageT_contra]):
    """One channel's sender: ``send`` returns what was accepted or raises a ProviderError.

    ``asend`` is the same call for an event loop (the send pipeline awaits it, many in flight);
    ``send`` serves callers without a loop (probes, the CLI, tests).
    """

    @property
    def channel(self) -> Channel: ...

    @property
    def name(self) -> str: ...

    def send(self, message: MessageT_contra) -> ProviderResult: ...

    async def asend(self, message: MessageT_contra) -> ProviderResult: ...

    def close(self) -> None: ...


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def seconds_until(unix_time: str | None, *, now: float | None = None) -> float | None:
    """Seconds from now until a Unix time given as header text (SendGrid's X-RateLimit-Reset)."""
    if not unix_time:
        return None
    try:
        target = float(unix_time.strip())
    except ValueError:
        return None
    return max(0.0, target - (time.time() if now is None else now))


def request_reached_server(exc: requests.RequestException) -> bool:
    """Whether a failed ``requests`` call may have reached the provider: False only when the
    connection was never made (refused, connect timeout), so resending cannot duplicate."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        return not isinstance(cause.reason, NewConnectionError | ConnectTimeoutError)
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def check_timeout(provider: str, timeout: float) -> None:
    """A provider's timeout must be a positive number of seconds (settings refuse anything else)."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise SettingsError(f"switchboard.{provider}.timeout must be a positive number of seconds")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced, so provider text can go into error messages."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
