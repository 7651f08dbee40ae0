"""Wiring: the switchboard as a bus app (its subscriptions, providers, stores)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bus import Bus, Retry
from bus.keys import INCOMING_QUEUE
from bus.runtime.worker import Worker
from switchboard.admission import ProviderGate
from switchboard.channel_states import ChannelStates
from switchboard.channels import Channel
from switchboard.circuits import Circuits
from switchboard.consent import ConsentCheck
from switchboard.deliveries import Deliveries, Suppressions
from switchboard.digesting import FLUSH_EVENT, Digester
from switchboard.digests import Digests
from switchboard.errors import ProviderConfigurationError
from switchboard.events import BY_CHANNEL
from switchboard.hooks.parsing import EVENT_TYPE as PROVIDER_STATUS
from switchboard.in_flight import rides_for
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
from switchboard.recipient_limits import RecipientLimits
from switchboard.send_limits import SendLimits
from switchboard.sending import Sender
from switchboard.settings import SwitchboardSettings
from switchboard.standing import RateWaits
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


def unusable(chains: Mapping[Channel, Sequence[Provider[Any]]]) -> dict[Channel, str]:
    """The channels with a provider that cannot be built from the settings, and why."""
    found = {c: "; ".join(p.problem for p in chain if isinstance(p, UnusableProvider)) for c, chain in chains.items()}
    return {c: problem for c, problem in found.items() if problem}


class Switchboard:
    """The notification app on a bus: ``send_email``/``send_sms``/``send_push`` -> providers."""

    def __init__(
        self,
        bus: Bus,
        settings: SwitchboardSettings,
        *,
        providers: Mapping[Channel, Sequence[Provider[Any]]] | None = None,
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
        self.providers = (
            {c: list(chain) for c, chain in providers.items()}
            if providers is not None
            else build_provider_chains(settings, self.outbox)
        )
        self.deliveries = Deliveries(bus.redis, self.keys, retention=settings.retention_seconds, stale_after=60.0)
        self.suppressions = Suppressions(bus.redis, self.keys)
        self.channel_states = ChannelStates(bus.redis, self.keys, clock)
        self.preferences = Preferences(bus.redis, self.keys, clock)
        # Circuits and rates read the Redis server's clock: every worker host agrees on it.
        self.circuits = Circuits(bus.redis, self.keys, settings.circuit)
        gate = ProviderGate(bus.redis, self.keys, settings.circuit, settings.rate_limits)
        chains = {c: tuple(p.name for p in chain) for c, chain in self.providers.items()}
        limits = SendLimits(settings, self.templates, gate, RecipientLimits(bus.redis, self.keys), chains)
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
            circuits=self.circuits,
            limits=limits,
            waits=RateWaits(bus.redis, self.keys),
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

    def worker(self, *, driver: bool = True, **options: Any) -> Worker:
        """The bus worker that runs this switchboard: its queues (and ``bus_incoming`` unless
        ``driver`` is False), with ``concurrency`` sends in flight and a few more rides around
        them (``in_flight``); ``options`` go to :meth:`Bus.worker`."""
        queues = self.queues + ([INCOMING_QUEUE] if driver else [])
        return self.bus.worker(queues, concurrency=rides_for(self.settings.concurrency), **options)

    def close(self) -> None:
        for chain in self.providers.values():
            for provider in chain:
                provider.close()
