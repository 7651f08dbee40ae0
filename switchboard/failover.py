"""Where a send goes after one provider failed: on to the next provider of its chain, or no further.

A passing failure (5xx, 429, network) or our configuration refused: the next provider, at
once, in the same attempt. A final "no" about the message or its recipient: no failover
(another provider would get the same bad recipient). A timeout once the provider had the
request: no failover unless the channel says ``failover_on_timeout`` (the first provider may
have sent it: the next would send a second copy).

Each try is kept as a :class:`Try` (provider, outcome, masked error) for the delivery record,
its timeline and its outcome event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from switchboard.errors import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    TransientProviderError,
)


class Outcome(StrEnum):
    """How one try through one provider ended."""

    SENT = "sent"
    TRANSIENT = "transient"
    """5xx, 429, network: the provider may take it later."""
    TIMEOUT = "timeout"
    """The provider had the request and never answered: it may have sent it."""
    REFUSED = "refused"
    """A final no, about the message or a recipient."""
    CONFIGURATION = "configuration"
    """Our credentials or setup were refused: its circuit opens."""
    CIRCUIT_OPEN = "circuit_open"
    """Not tried: its circuit is open (another process saw it fail)."""


@dataclass(frozen=True, slots=True)
class Try:
    """One provider's part in a send, as the record and the outcome event list it."""

    provider: str
    outcome: Outcome
    error: str = ""
    """Masked: recipients never appear in it."""
    code: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"provider": self.provider, "outcome": self.outcome.value}
        if self.error:
            data["error"] = self.error
        if self.code:
            data["code"] = self.code
        return data


def outcome_of(error: ProviderError) -> Outcome:
    """The outcome a provider error stands for."""
    if isinstance(error, AmbiguousProviderError):
        return Outcome.TIMEOUT
    if isinstance(error, TransientProviderError):
        return Outcome.TRANSIENT
    if isinstance(error, ProviderConfigurationError):
        return Outcome.CONFIGURATION
    return Outcome.REFUSED


def fails_over(error: ProviderError, *, failover_on_timeout: bool) -> bool:
    """True when the same message should go through the next provider now."""
    if isinstance(error, AmbiguousProviderError):
        return failover_on_timeout
    if isinstance(error, ProviderConfigurationError):
        # A sender the provider refused (an unverified from address) may be fine elsewhere too.
        return True
    return isinstance(error, TransientProviderError)


def circuit_failure(error: ProviderError) -> bool | None:
    """What the provider's circuit makes of this error: True a failure (passing, timeout, our
    configuration), False a success (a final no about the message or a recipient: the provider
    works), None nothing (a sender only this provider refuses says nothing of its health)."""
    if isinstance(error, PermanentProviderError):
        return False
    if isinstance(error, ProviderConfigurationError) and error.sender:
        return None
    return True
