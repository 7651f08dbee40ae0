"""Wiring: the switchboard as a bus app (its subscriptions, providers, stores)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

from bus import Bus, Retry
from switchboard.channels import Channel
from switchboard.deliveries import Deliveries, Suppressions
from switchboard.events import BY_CHANNEL
from switchboard.keys import SwitchboardKeys
from switchboard.providers import FcmProvider, Provider, SendGridProvider, TwilioProvider
from switchboard.providers.outbox import Outbox, OutboxProvider
from switchboard.sending import Sender
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateStore


def build_providers(settings: SwitchboardSettings, outbox: Outbox) -> dict[Channel, Provider[Any]]:
    """The real provider where credentials are configured, the outbox elsewhere."""
    sendgrid, twilio, fcm = settings.sendgrid, settings.twilio, settings.fcm
    return {
        Channel.EMAIL: (
            SendGridProvider(sendgrid, sender=settings.default_sender)
            if sendgrid.configured
            else OutboxProvider(Channel.EMAIL, outbox)
        ),
        Channel.SMS: TwilioProvider(twilio) if twilio.configured else OutboxProvider(Channel.SMS, outbox),
        Channel.PUSH: FcmProvider(fcm) if fcm.configured else OutboxProvider(Channel.PUSH, outbox),
    }


class Switchboard:
    """The notification app on a bus: ``send_email``/``send_sms``/``send_push`` -> providers."""

    def __init__(
        self,
        bus: Bus,
        settings: SwitchboardSettings,
        *,
        providers: Mapping[Channel, Provider[Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.keys = SwitchboardKeys(bus.keys)
        self.templates = TemplateStore(
            settings.templates_dir,
            default_locale=settings.default_locale,
            refresh_interval=settings.template_refresh_seconds,
        )
        self.outbox = Outbox(bus.redis, self.keys, size=settings.outbox_size)
        self.providers = dict(providers) if providers is not None else build_providers(settings, self.outbox)
        self.deliveries = Deliveries(bus.redis, self.keys, retention=settings.retention_seconds, stale_after=60.0)
        self.suppressions = Suppressions(bus.redis, self.keys)
        self.sender = Sender(
            bus=bus,
            settings=settings,
            templates=self.templates,
            providers=self.providers,
            deliveries=self.deliveries,
            suppressions=self.suppressions,
            clock=clock,
        )
        self.dispatch = bus.dispatch(settings.app_key)
        # One more bus retry than the switchboard's own budget: the sender decides when to give up.
        retry = Retry(
            max_retries=settings.retry.max_retries + 1,
            base_delay=settings.retry.base_delay,
            max_delay=settings.retry.max_delay,
        )
        for channel, model in BY_CHANNEL.items():
            handler = functools.partial(self.sender.handle, model.EVENT_TYPE)
            self.dispatch.add(model.EVENT_TYPE, handler, queue=channel.value, retry=retry)

    @property
    def queues(self) -> list[str]:
        return self.dispatch.queues

    def close(self) -> None:
        for provider in self.providers.values():
            provider.close()
