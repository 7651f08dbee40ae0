"""The limits a send meets before any provider call: quiet hours, the SMS countries, the
per-recipient limits and the providers' circuits and rates.

Quiet hours and countries are decided here without Redis; the recipient counts and the
admission to a provider ride on the delivery's claim (one round trip for all of it), so a
send within every limit costs nothing more than before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from switchboard.admission import Admission, Candidate, ProviderGate
from switchboard.channels import Channel
from switchboard.countries import region_of, sms_allowed
from switchboard.errors import TemplateError
from switchboard.events import Notification, SendSms
from switchboard.recipient_limits import RecipientCount, RecipientLimit, RecipientLimits, limit_for
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateInfo, TemplateStore


@dataclass(frozen=True, slots=True)
class Checked:
    """What the claim's round trip said: the provider admitted (or why none is), and each
    recipient's count in the per-recipient limit (none without a limit)."""

    admission: Admission
    limit: RecipientLimit | None
    counts: tuple[RecipientCount, ...]

    @property
    def limited(self) -> set[str]:
        """Digests of the recipients over their limit."""
        return {c.digest for c in self.counts if not c.allowed}

    @property
    def refused(self) -> list[RecipientCount]:
        return [c for c in self.counts if not c.allowed]


class SendLimits:
    """Decides holds and refusals, and queues the shared checks on a claim's pipeline."""

    def __init__(
        self,
        settings: SwitchboardSettings,
        templates: TemplateStore,
        gate: ProviderGate,
        recipients: RecipientLimits,
        chains: dict[Channel, tuple[str, ...]],
    ) -> None:
        self.settings = settings
        self.templates = templates
        self.gate = gate
        self.recipients = recipients
        self.candidates = {channel: self._candidates(names) for channel, names in chains.items()}

    def _candidates(self, names: Sequence[str]) -> tuple[Candidate, ...]:
        """A chain as the admission sees it: each provider with its sender number when that has a rate."""
        rates = self.settings.rate_limits
        numbers = {"twilio": self.settings.twilio.from_number, "vonage": self.settings.vonage.from_number}
        return tuple(Candidate(name, numbers.get(name) if rates.of_sender(name) else None) for name in names)

    def template_of(self, notification: Notification) -> TemplateInfo | None:
        """The template's settings (category, own limit); None without one, or when it is broken
        (rendering it records that)."""
        if not notification.template:
            return None
        try:
            return self.templates.get(notification.CHANNEL, notification.template)
        except TemplateError:
            return None

    def hold_until(self, notification: Notification, attributes: dict[str, Any], now: float) -> datetime | None:
        """When quiet hours end, if they hold this message now; None to send it now."""
        info = self.template_of(notification)
        category = self.settings.categories.get(info.category) if info is not None and info.category else None
        bus_timezone = attributes.get("bus_timezone")
        return self.settings.quiet_hours.hold_until(
            datetime.fromtimestamp(now, UTC),
            category=category,
            priority=notification.priority,
            timezone=notification.timezone,
            bus_timezone=bus_timezone if isinstance(bus_timezone, str) else None,
        )

    def country_refusal(self, notification: Notification) -> str | None:
        """Why an SMS may not go to its number's country; None when it may."""
        allowed = self.settings.sms.allowed_countries
        if not isinstance(notification, SendSms) or sms_allowed(notification.to, allowed):
            return None
        region = region_of(notification.to)
        where = f"country {region}" if region else "a number no country could be found for"
        return f"SMS to {where} is not allowed (switchboard.sms.allowed_countries: {', '.join(allowed)})"

    def queue(
        self, pipe: Any, notification: Notification, delivery_id: str, recipients: list[str]
    ) -> Callable[[list[Any]], Checked]:
        """Queue the admission and the recipient counts on ``pipe``; the returned function reads
        them from the pipeline's replies."""
        channel = notification.CHANNEL
        candidates = self.candidates[channel]
        first = len(pipe)
        token = self.gate.queue_admit(pipe, candidates)
        limit = limit_for(channel.value, self.settings.channel(channel), self.template_of(notification))
        if limit is not None:
            for recipient in recipients:
                self.recipients.queue_check(pipe, limit, recipient, delivery_id)

        def read(replies: list[Any]) -> Checked:
            admission = self.gate.admission(candidates, token, replies[first])
            counts = (
                tuple(
                    self.recipients.verdict(reply, limit, r)
                    for reply, r in zip(replies[first + 1 : first + 1 + len(recipients)], recipients, strict=True)
                )
                if limit is not None
                else ()
            )
            return Checked(admission, limit, counts)

        return read

    def note_refused(self, checked: Checked) -> None:
        """Remember the recipients refused (masked), for the CLI and the dashboard."""
        if checked.limit is not None and checked.refused:
            self.recipients.note_refused(checked.limit, checked.refused)
