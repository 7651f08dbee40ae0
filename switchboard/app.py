"""Wiring: the switchboard as a bus app (its subscriptions, providers, stores)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

from bus import Bus, Retry
from switchboard.channel_states import ChannelStates
from switchboard.channels import Channel
from switchboard.consent import ConsentCheck
from switchboard.deliveries import Deliveries, Suppressions
from switchboard.digesting import FLUSH_EVENT, Digester
from switchboard.digests import Digests
from switchboard.errors import ProviderConfigurationError
from switchboard.events import BY_CHANNEL
from switchboard.hooks.parsing import EVENT_TYPE as PROVIDER_STATUS
from switchboard.keys import SwitchboardKeys
from switchboard.preference_changes import SET_PREFERENCE, PreferenceChanges
from switchboard.preferences import Preferences
from switchboard.providers import (
    FcmProvider,
    Provider,
    SendGridProvider,
    SmtpProvider,
    TwilioProvider,
    VonageProvider,
)
from switchboard.providers.outbox import Outbox, OutboxProvider
from switchboard.providers.unusable import UnusableProvider, build_or_stand_in
from switchboard.sending import Sender
from switchboard.settings import SwitchboardSettings
from switchboard.statuses import StatusApplier
from switchboard.templating import TemplateStore

STATUS_RETRY = Retry(max_retries=10, base_delay=1.0, max_delay=30.0)


def provider_builder(settings: SwitchboardSettings, name: str) -> Callable[[], Provider[Any]]:
    """How to build one provider by its settings name."""
    builders: dict[str, Callable[[], Provider[Any]]] = {
        "sendgrid": lambda: SendGridProvider(settings.sendgrid, sender=settings.default_sender),
        "smtp": lambda: SmtpProvider(settings.smtp, sender=settings.default_sender),
        "twilio": lambda: TwilioProvider(settings.twilio),
        "vonage": lambda: VonageProvider(settings.vonage),
        "fcm": lambda: FcmProvider(settings.fcm),
    }
    return builders[name]


def build_provider_chains(settings: SwitchboardSettings, outbox: Outbox) -> dict[Channel, list[Provider[Any]]]:
    """Each channel's providers in failover order (``[switchboard.<channel>] providers``), each one
    that cannot be built standing in as an UnusableProvider; the outbox alone in dev mode."""
    return {
        channel: [build_or_stand_in(channel, name, provider_builder(settings, name)) for name in chain]
        or [OutboxProvider(channel, outbox)]
        for channel, chain in ((c, settings.provider_chain(c)) for c in Channel)
    }


def build_providers(settings: SwitchboardSettings, outbox: Outbox) -> dict[Channel, Provider[Any]]:
    """The provider each channel sends through today: the first of its chain (the send pipeline
    takes the whole chain, for failover, with build_provider_chains)."""
    chains = {channel: settings.provider_chain(channel) for channel in Channel}
    return {
        channel: build_or_stand_in(channel, chain[0], provider_builder(settings, chain[0]))
        if chain
        else OutboxProvider(channel, outbox)
        for channel, chain in chains.items()
    }


def provider_problems(settings: SwitchboardSettings) -> dict[Channel, str]:
    """What ``switchboard run`` would find wrong with each configured provider (built, then closed)."""
    problems: dict[Channel, str] = {}
    for channel in Channel:
        found = []
        for name in settings.provider_chain(channel):
            try:
                provider_builder(settings, name)().close()
            except ProviderConfigurationError as exc:
                found.append(str(exc))
        if found:
            problems[channel] = "; ".join(found)
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
            categories=settings.categories,
        )
        self.outbox = Outbox(bus.redis, self.keys, size=settings.outbox_size)
        self.providers = dict(providers) if providers is not None else build_providers(settings, self.outbox)
        self.deliveries = Deliveries(bus.redis, self.keys, retention=settings.retention_seconds, stale_after=60.0)
        self.suppressions = Suppressions(bus.redis, self.keys)
        self.channel_states = ChannelStates(bus.redis, self.keys, clock)
        self.preferences = Preferences(bus.redis, self.keys, clock)
        self.sender = Sender(
            bus=bus,
            settings=settings,
            templates=self.templates,
            providers=self.providers,
            deliveries=self.deliveries,
            suppressions=self.suppressions,
            channel_states=self.channel_states,
            consent=ConsentCheck(self.preferences, settings, self.templates),
            digester=Digester(bus, Digests(bus.redis, self.keys), self.templates),
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
        self.statuses = StatusApplier(bus=bus, deliveries=self.deliveries, suppressions=self.suppressions, clock=clock)
        # A provider event for a delivery still being recorded waits for it (seconds, not hours).
        self.dispatch.add(PROVIDER_STATUS, self.statuses.handle, queue="status", retry=STATUS_RETRY)
        self.preference_changes = PreferenceChanges(bus, self.preferences, settings)
        self.dispatch.add(SET_PREFERENCE, self.preference_changes.handle, queue="preferences")
        self.dispatch.add(FLUSH_EVENT, self._flush_digest, queue="digests", retry=retry)

    async def _flush_digest(self, attributes: dict[str, Any]) -> None:
        await self.sender.digester.flush(attributes, functools.partial(self.sender.handle, collect=False))

    @property
    def queues(self) -> list[str]:
        return self.dispatch.queues

    def close(self) -> None:
        for provider in self.providers.values():
            provider.close()
