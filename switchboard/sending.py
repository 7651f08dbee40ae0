"""One notification request, end to end: validate, claim, render, send, record, announce.

Two round trips to Redis per send besides the bus's own: before the provider call, the
claim with the suppression lookup; after it, the record with its outcome event.

Outcomes map onto the bus: a passing provider failure raises ``RetryLater`` (the bus
retries with backoff, at least as long as the provider asked); what can never succeed
raises ``Reject`` (the bus records it in the failed list, where an operator can retry it
once the cause is fixed); a provider's final "no" about a recipient is a delivery
outcome, recorded and announced, and the recipient is suppressed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bus import Bus, Reject, RetryLater
from switchboard.channels import Channel
from switchboard.deliveries import Claim, Deliveries, Status, Suppressions, claim_of
from switchboard.errors import (
    PermanentProviderError,
    ProviderConfigurationError,
    TemplateError,
    TransientProviderError,
)
from switchboard.events import InvalidNotification, Notification, SendEmail, SendPush, SendSms, parse_event
from switchboard.privacy import mask, recipient_digest
from switchboard.providers import EmailMessage, Provider, ProviderResult, PushMessage, PushResult, SmsMessage
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateStore

log = logging.getLogger("switchboard.sending")

Message = EmailMessage | SmsMessage | PushMessage


@dataclass(slots=True)
class Request:
    """A validated notification and the identities it is tracked by."""

    notification: Notification
    channel: Channel
    request_id: str
    delivery_id: str
    attributes: dict[str, Any]


class Sender:
    """Turns ``send_*`` events into provider calls, with every outcome recorded."""

    def __init__(
        self,
        *,
        bus: Bus,
        settings: SwitchboardSettings,
        templates: TemplateStore,
        providers: Mapping[Channel, Provider[Any]],
        deliveries: Deliveries,
        suppressions: Suppressions,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.templates = templates
        self.providers = providers
        self.deliveries = deliveries
        self.suppressions = suppressions
        self.clock = clock
        self.stopped: dict[Channel, str] = {}

    # --- the pipeline ------------------------------------------------------------
    def handle(self, event_type: str, attributes: dict[str, Any]) -> None:
        """The bus handler for one ``send_*`` event."""
        try:
            notification = parse_event(event_type, attributes)
        except InvalidNotification as exc:
            raise Reject(str(exc)) from None
        if self._delay_until_due(notification, attributes):
            return
        request = self._request(notification, attributes)
        recipients = notification.recipients()
        digests = [recipient_digest(r) for r in recipients]
        claim, suppressed = self._claim(request, digests)
        if claim is Claim.DONE:
            log.info("delivery %s already decided; not sending again", request.delivery_id)
            return
        if claim is Claim.BUSY:
            raise RetryLater(
                f"delivery {request.delivery_id} is being sent by another worker", self.deliveries.stale_after
            )
        allowed = [r for r, d in zip(recipients, digests, strict=True) if d not in suppressed]
        if not allowed:
            self._finish(request, Status.SUPPRESSED, error="every recipient is suppressed")
            return
        if request.channel in self.stopped:
            self._retry_later(request, f"channel stopped: {self.stopped[request.channel]}", self._config_delay())
        message = self._message(request, allowed)
        self._send(request, message)

    def _claim(self, request: Request, digests: list[str]) -> tuple[Claim, set[str]]:
        """Claim the delivery and look its recipients up in the suppression list, in one round trip."""
        pipe = self.deliveries.redis.pipeline(transaction=False)
        self.deliveries.queue_claim(pipe, request.delivery_id, self.clock(), self._initial_record(request, digests))
        if digests:
            self.suppressions.queue_lookup(pipe, request.channel, digests)
        replies = pipe.execute()
        return claim_of(replies[0]), self.suppressions.found(digests, replies[-1]) if digests else set()

    def _request(self, notification: Notification, attributes: dict[str, Any]) -> Request:
        request_id = notification.idempotency_key or str(attributes.get("bus_id") or "")
        if not request_id:
            raise Reject("the event has neither an idempotency_key nor a bus_id")
        channel = notification.CHANNEL
        return Request(notification, channel, request_id, f"{channel}:{request_id}", attributes)

    def _initial_record(self, request: Request, digests: list[str]) -> dict[str, str]:
        n = request.notification
        return {
            "channel": request.channel.value,
            "template": n.template or "",
            "locale": n.locale or "",
            "recipients": ",".join(mask(r) for r in n.recipients()),
            "recipient_digests": ",".join(digests),
            "request_id": request.request_id,
            "idempotency_key": n.idempotency_key or "",
            "source": str(request.attributes.get("bus_app_hostname") or ""),
        }

    def _delay_until_due(self, notification: Notification, attributes: dict[str, Any]) -> bool:
        """A ``send_at`` in the future: hand the event to delayed publish, same request id."""
        send_at = notification.send_at
        if send_at is None or send_at.timestamp() <= self.clock() or "bus_delayed_until" in attributes:
            return False
        fields = notification.to_attributes()
        fields.setdefault("idempotency_key", str(attributes.get("bus_id") or ""))
        self.bus.publish_at(send_at, notification.EVENT_TYPE, fields)
        log.info("%s scheduled for %s", notification.EVENT_TYPE, send_at.isoformat())
        return True

    # --- rendering -----------------------------------------------------------------
    def _message(self, request: Request, recipients: list[str]) -> Message:
        n = request.notification
        try:
            rendered = self.templates.render(request.channel, n.template, n.data, n.locale) if n.template else None
        except TemplateError as exc:
            self._finish(request, Status.STALLED, error=str(exc))
            raise Reject(f"template: {exc}") from None
        if isinstance(n, SendEmail):
            sender = n.from_ or self.settings.default_sender
            if not self.settings.sender_allowed(sender):
                self._finish(request, Status.FAILED, error=f"sender {sender} is not allowed by the settings")
                raise Reject(f"sender {sender} is not allowed (see [switchboard] senders)")
            return EmailMessage(
                to=recipients,
                subject=(rendered.subject if rendered else n.subject) or "",
                text=rendered.text if rendered else n.text,
                html=rendered.html if rendered else n.html,
                from_email=sender,
                cc=[str(a) for a in n.cc],
                bcc=[str(a) for a in n.bcc],
                reply_to=str(n.reply_to) if n.reply_to else None,
                headers=dict(n.headers),
                categories=list(n.categories),
            )
        if isinstance(n, SendSms):
            return SmsMessage(to=recipients[0], body=(rendered.body if rendered else n.body) or "")
        assert isinstance(n, SendPush)
        return PushMessage(
            tokens=tuple(recipients) if n.to else (),
            topic=n.topic,
            title=rendered.title if rendered else n.title,
            body=rendered.body if rendered else n.body,
            data=dict(n.data_payload),
            image=n.image,
        )

    # --- sending -------------------------------------------------------------------
    def _send(self, request: Request, message: Message) -> None:
        provider = self.providers[request.channel]
        try:
            result = provider.send(message)
        except TransientProviderError as exc:
            self._transient(request, exc, exc.retry_after)
        except PermanentProviderError as exc:
            if exc.recipient_problem:
                self._suppress(request.channel, request.notification.recipients(), str(exc), exc.code)
                self._finish(request, Status.FAILED, error=str(exc), code=exc.code, provider=provider.name)
                return
            self._finish(request, Status.FAILED, error=str(exc), code=exc.code, provider=provider.name)
            raise Reject(f"{provider.name} refused the message: {exc}") from None
        except ProviderConfigurationError as exc:
            self.stopped[request.channel] = str(exc)
            log.error("channel %s STOPPED: %s rejected our configuration: %s", request.channel, provider.name, exc)
            self._retry_later(request, f"configuration: {exc}", self._config_delay())
        else:
            self._sent(request, provider.name, result)

    def _sent(self, request: Request, provider: str, result: ProviderResult) -> None:
        if isinstance(result, PushResult) and result.failed:
            if result.unregistered:
                self._suppress(request.channel, list(result.unregistered), "unregistered device token", "UNREGISTERED")
            if result.retry_targets:
                self._retry_push_targets(request, result)
            if not result.delivered:
                error = "; ".join(str(o.error) for o in result.failed)
                self._finish(request, Status.FAILED, error=error, provider=provider)
                return
        self._finish(
            request, Status.SENT, provider=provider, provider_message_id=result.message_id, segments=result.segments
        )

    def _retry_push_targets(self, request: Request, result: PushResult) -> None:
        """Tokens that failed for a passing reason get a follow-up request of their own."""
        assert isinstance(request.notification, SendPush)
        follow_up = request.notification.model_copy(
            update={"to": list(result.retry_targets), "idempotency_key": f"{request.request_id}:retry"}
        )
        delay = result.retry_after or self.settings.retry.base_delay
        self.bus.publish_in(delay, SendPush.EVENT_TYPE, follow_up.to_attributes())

    def _transient(self, request: Request, exc: TransientProviderError, retry_after: float | None) -> None:
        self._retry_later(request, str(exc), retry_after or 0.0, code=exc.code)

    def _retry_later(self, request: Request, error: str, delay: float, code: str | None = None) -> None:
        """Try again later (after at least ``delay``), or give up once the attempt budget is spent."""
        record = self.deliveries.get(request.delivery_id)
        attempts = record.attempts if record else 1
        if attempts > self.settings.retry.max_retries:
            self._finish(request, Status.STALLED, error=f"gave up after {attempts} attempts: {error}", code=code)
            raise Reject(f"gave up after {attempts} attempts: {error}")
        backoff = min(self.settings.retry.max_delay, self.settings.retry.base_delay * 2 ** (attempts - 1))
        self.deliveries.finish(
            request.delivery_id, request.channel, self.clock(), Status.RETRYING.value, error=error, error_code=code
        )
        raise RetryLater(error, max(delay, backoff))

    def _config_delay(self) -> float:
        return self.settings.retry.configuration_delay

    def _suppress(self, channel: Channel, recipients: list[str], reason: str, code: str | None) -> None:
        for recipient in recipients:
            self.suppressions.add(channel, recipient_digest(recipient), mask(recipient), reason, self.clock(), code)
            log.info("suppressed %s on %s: %s", mask(recipient), channel, reason)

    # --- recording and announcing ------------------------------------------------------
    def _finish(self, request: Request, status: Status, **fields: Any) -> None:
        now = self.clock()
        outcome = "sent" if status is Status.SENT else "failed"
        n = request.notification
        event: dict[str, Any] = {
            "delivery_id": request.delivery_id,
            "request_id": request.request_id,
            "idempotency_key": n.idempotency_key,
            "status": status.value,
            "template": n.template,
            "locale": n.locale,
            "recipients": [mask(r) for r in n.recipients()],
            "provider": fields.get("provider"),
            "provider_message_id": fields.get("provider_message_id"),
            "error": fields.get("error"),
            "error_code": fields.get("code"),
            "finished_at": datetime.fromtimestamp(now).astimezone().isoformat(),
        }

        def record(pipe: Any) -> None:
            self.deliveries.queue_finish(pipe, request.delivery_id, request.channel, now, status.value, **fields)

        self.bus.publish_with(
            record,
            f"{request.channel}_{outcome}",
            {k: v for k, v in event.items() if v is not None},
        )
