"""Wiring: the switchboard as a bus app (its subscriptions, providers, stores)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

from bus import Bus, Retry
from switchboard.channel_states import ChannelStates
from switchboard.channels import Channel
from switchboard.deliveries import Deliveries, Suppressions
from switchboard.errors import ProviderConfigurationError
from switchboard.events import BY_CHANNEL
from switchboard.keys import SwitchboardKeys
from switchboard.providers import FcmProvider, Provider, SendGridProvider, TwilioProvider
from switchboard.providers.outbox import Outbox, OutboxProvider
from switchboard.providers.unusable import UnusableProvider, build_or_stand_in
from switchboard.sending import Sender
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateStore


def build_providers(settings: SwitchboardSettings, outbox: Outbox) -> dict[Channel, Provider[Any]]:
    """The real provider where credentials are configured, the outbox elsewhere."""
    sendgrid, twilio, fcm = settings.sendgrid, settings.twilio, settings.fcm
    real: dict[Channel, tuple[bool, str, Callable[[], Provider[Any]]]] = {
        Channel.EMAIL: (
            sendgrid.configured,
            "sendgrid",
            lambda: SendGridProvider(sendgrid, sender=settings.default_sender),
        ),
        Channel.SMS: (twilio.configured, "twilio", lambda: TwilioProvider(twilio)),
        Channel.PUSH: (fcm.configured, "fcm", lambda: FcmProvider(fcm)),
    }
    return {
        channel: build_or_stand_in(channel, name, build) if configured else OutboxProvider(channel, outbox)
        for channel, (configured, name, build) in real.items()
    }


def provider_problems(settings: SwitchboardSettings) -> dict[Channel, str]:
    """What ``switchboard run`` would find wrong with each configured provider (built, then closed)."""
    problems: dict[Channel, str] = {}
    builders: dict[Channel, Callable[[], Provider[Any]]] = {}
    if settings.sendgrid.configured:
        builders[Channel.EMAIL] = lambda: SendGridProvider(settings.sendgrid, sender=settings.default_sender)
    if settings.twilio.configured:
        builders[Channel.SMS] = lambda: TwilioProvider(settings.twilio)
    if settings.fcm.configured:
        builders[Channel.PUSH] = lambda: FcmProvider(settings.fcm)
    for channel, build in builders.items():
        try:
            build().close()
        except ProviderConfigurationError as exc:
            problems[channel] = str(exc)
    return problems


def unusable(providers: Mapping[Channel, Provider[Any]]) -> dict[Channel, str]:
    """The channels whose provider cannot be built from the settings, and why."""
    return {c: p.problem for c, p in providers.items() if isinstance(p, UnusableProvider)}


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
        self.channel_states = ChannelStates(bus.redis, self.keys, clock)
        self.sender = Sender(
            bus=bus,
            settings=settings,
            templates=self.templates,
            providers=self.providers,
            deliveries=self.deliveries,
            suppressions=self.suppressions,
            channel_states=self.channel_states,
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
