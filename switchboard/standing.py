"""What the CLI, the dashboard and /metrics show of the providers and the limits.

Each provider of a channel's chain: its circuit, its rate limit and how many sends waited for
that rate; each per-recipient limit (a channel's, or a template's own): the recipients it
refused lately, masked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bus.backend.connection import as_text
from switchboard.channels import Channel
from switchboard.circuits import Circuits, CircuitState
from switchboard.keys import SwitchboardKeys
from switchboard.recipient_limits import RecipientCount, RecipientLimit, RecipientLimits, limit_for
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateStore


class RateWaits:
    """Sends that waited because their provider was at its rate, counted per provider."""

    def __init__(self, redis: Any, keys: SwitchboardKeys) -> None:
        self.redis = redis
        self.keys = keys

    def queue_count(self, pipe: Any, provider: str) -> None:
        pipe.hincrby(self.keys.rate_waits, provider, 1)

    def totals(self) -> dict[str, int]:
        return {as_text(k): int(v) for k, v in self.redis.hgetall(self.keys.rate_waits).items()}


@dataclass(frozen=True, slots=True)
class ProviderStanding:
    """One provider as shown: the channels it serves, its circuit, its limits."""

    provider: str
    channels: tuple[str, ...]
    circuit: CircuitState
    rate: float
    """Sends per second, shared by every worker; 0: no limit."""
    sender_rate: float
    """Sends per second per sender number; 0: no limit."""
    waits: int

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "channels": list(self.channels),
            **{k: v for k, v in asdict(self.circuit).items() if k != "provider"},
            "rate": self.rate,
            "sender_rate": self.sender_rate,
            "waits": self.waits,
        }


def chained(settings: SwitchboardSettings) -> dict[str, tuple[str, ...]]:
    """Every provider some channel sends through, in chain order, with its channels."""
    found: dict[str, tuple[str, ...]] = {}
    for channel in Channel:
        for provider in settings.provider_chain(channel):
            found[provider] = (*found.get(provider, ()), channel.value)
    return found


def provider_standings(
    settings: SwitchboardSettings, redis: Any, keys: SwitchboardKeys, clock: Callable[[], float] | None = None
) -> list[ProviderStanding]:
    """Each chained provider's circuit, limits and waits."""
    providers = chained(settings)
    states = Circuits(redis, keys, settings.circuit, clock).states(list(providers))
    waits = RateWaits(redis, keys).totals()
    rates = settings.rate_limits
    return [
        ProviderStanding(
            state.provider,
            providers[state.provider],
            state,
            rates.of(state.provider),
            rates.of_sender(state.provider),
            waits.get(state.provider, 0),
        )
        for state in states
    ]


def recipient_limits(settings: SwitchboardSettings, templates: TemplateStore) -> list[RecipientLimit]:
    """Every per-recipient limit in force: each channel's, then each template's own."""
    limits = [
        limit for channel in Channel if (limit := limit_for(channel.value, settings.channel(channel), None)) is not None
    ]
    for info in templates.templates():
        if info.recipient_limit is not None:
            own = limit_for(info.channel.value, settings.channel(info.channel), info)
            if own is not None:
                limits.append(own)
    return limits


def refused_recipients(
    limits: list[RecipientLimit], store: RecipientLimits, *, newest: int = 50
) -> list[tuple[RecipientLimit, list[RecipientCount]]]:
    """Each limit with the recipients it refused within its window (masked), newest first."""
    return [(limit, store.refused(limit, newest=newest)) for limit in limits]
