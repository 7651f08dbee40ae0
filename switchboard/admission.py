"""Which provider may take a send now: circuits and provider rate limits, in one round trip.

``ProviderGate.admit`` walks a channel's providers in failover order in one script: a
provider whose circuit is open is passed over; the first one whose circuit lets the send
through is chosen, and its rate limits (per provider, and per sender number) say "send now"
or "wait N seconds". The rate limits are GCRA (the generic cell rate algorithm): one stored
time per limit, the theoretical arrival time of the next send, so any second holds at most
``rate + burst - 1`` sends, across every worker process. A send that has to wait takes
nothing: neither a rate slot nor the probe of a half-open circuit.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bus.backend.connection import as_text, pipe_eval
from switchboard.circuits import NOW_LUA, CircuitChange, CircuitSettings, report
from switchboard.errors import SettingsError
from switchboard.keys import SwitchboardKeys

# KEYS: per provider, its circuit, its rate key, its sender's rate key.
# ARGV: now, probe token, probe lease, then per provider: rate, sender rate, burst.
# Returns {index (0: none), verdict, seconds, change}.
_ADMIT = (
    NOW_LUA
    + """
local now, token, lease = now_of(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local function gcra(key, rate, burst)
  if rate <= 0 then return 0, nil end
  local interval = 1 / rate
  local tat = tonumber(redis.call('GET', key) or '') or now
  if tat < now then tat = now end
  local allowed_at = tat - (burst - 1) * interval
  if now < allowed_at then return allowed_at - now, nil end
  return 0, tat + interval
end
local function keep(key, tat)
  if tat then redis.call('SET', key, string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000) end
end
local earliest = nil
for i = 1, (#KEYS / 3) do
  local circuit, own, sender = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local h = redis.call('HMGET', circuit, 'state', 'until', 'probe_until')
  local state, verdict, blocked = h[1] or 'closed', 'send', nil
  if state == 'open' then
    if now < (tonumber(h[2]) or 0) then blocked = tonumber(h[2]) else verdict = 'probe' end
  elseif state == 'half_open' then
    if now < (tonumber(h[3]) or 0) then blocked = tonumber(h[3]) else verdict = 'probe' end
  end
  if blocked then
    if not earliest or blocked < earliest then earliest = blocked end
  else
    local rate, sender_rate, burst = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2]), tonumber(ARGV[3 * i + 3])
    local wait_own, tat_own = gcra(own, rate, burst)
    local wait_sender, tat_sender = gcra(sender, sender_rate, burst)
    local wait = math.max(wait_own, wait_sender)
    if wait > 0 then return {i, 'wait', tostring(wait), ''} end
    keep(own, tat_own)
    keep(sender, tat_sender)
    if verdict == 'probe' then
      redis.call('HSET', circuit, 'state', 'half_open', 'probe', token, 'probe_until', now + lease, 'changed_at', now)
      return {i, 'probe', '0', state == 'open' and 'half_open' or ''}
    end
    return {i, 'send', '0', ''}
  end
end
return {0, 'open', tostring(math.max(0, (earliest or now) - now)), ''}
"""
)


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """``[switchboard.rate_limits]``: sends per second per provider, shared by every worker; 0: no limit."""

    sendgrid: float = 0.0
    smtp: float = 0.0
    twilio: float = 0.0
    vonage: float = 0.0
    fcm: float = 0.0
    twilio_sender: float = 0.0
    """Per sender number (a US long code sends 1 SMS per second)."""
    vonage_sender: float = 0.0
    burst: int = 1
    """Sends that may go at once beyond the steady rate (1: evenly spaced)."""

    def __post_init__(self) -> None:
        for name in ("sendgrid", "smtp", "twilio", "vonage", "fcm", "twilio_sender", "vonage_sender"):
            if getattr(self, name) < 0:
                raise SettingsError(f"switchboard.rate_limits.{name} must be 0 (no limit) or more")
        if self.burst < 1:
            raise SettingsError("switchboard.rate_limits.burst must be at least 1")

    def of(self, provider: str) -> float:
        rate: float = getattr(self, provider, 0.0)
        return rate

    def of_sender(self, provider: str) -> float:
        rate: float = getattr(self, f"{provider}_sender", 0.0)
        return rate


@dataclass(frozen=True, slots=True)
class Candidate:
    """A provider that could take the send, and the sender number it would use."""

    provider: str
    sender: str | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """What ``admit`` decided.

    ``verdict``: ``send`` (go ahead), ``probe`` (go ahead: this send tests a recovering
    provider; give ``probe`` back to Circuits.record_*), ``wait`` (``provider`` is the one to
    use but it is at its rate: try again in ``wait`` seconds) or ``open`` (every circuit is
    open; the first may be probed in ``wait`` seconds). ``skipped`` lists providers passed
    over because their circuit is open.
    """

    verdict: str
    provider: str | None
    wait: float = 0.0
    probe: str | None = None
    skipped: tuple[str, ...] = ()
    change: CircuitChange | None = None

    @property
    def go(self) -> bool:
        return self.verdict in ("send", "probe")


class ProviderGate:
    """Admits sends to providers; one script, one round trip, the same answer for every process."""

    def __init__(
        self,
        redis: Any,
        keys: SwitchboardKeys,
        circuits: CircuitSettings,
        rates: RateLimitSettings,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.keys = keys
        self.circuits = circuits
        self.rates = rates
        self.clock = clock
        """None: the Redis server's clock (keep it the same as the Circuits' clock)."""
        self._admit = redis.register_script(_ADMIT)
        # Probe tokens: unique across processes by the prefix, cheap to make by the counter.
        self._token_prefix = uuid.uuid4().hex[:16]
        self._tokens = itertools.count()
        self._plans: dict[tuple[Candidate, ...], tuple[list[str], list[Any]]] = {}

    def admit(self, candidates: Sequence[Candidate]) -> Admission:
        """The provider to send through now, in ``candidates`` order, or why none can be."""
        keys, args = self._call(candidates)
        return self.admission(candidates, args[1], self._admit(keys=keys, args=args))

    def queue_admit(self, pipe: Any, candidates: Sequence[Candidate]) -> str:
        """Queue the admission on a pipeline (e.g. the claim's, to save its round trip); read the
        reply with ``admission(candidates, token, reply)``. Returns the token to pass there."""
        keys, args = self._call(candidates)
        pipe_eval(pipe, _ADMIT, keys, *args)
        return str(args[1])

    def admission(self, candidates: Sequence[Candidate], token: str, reply: Any) -> Admission:
        """What the admission script answered, as an Admission (a half-open change logged once)."""
        index, verdict, seconds, change = (_text(part) for part in reply)
        chosen = candidates[int(index) - 1].provider if int(index) else None
        passed = candidates[: int(index) - 1] if int(index) else candidates
        admission = Admission(
            verdict=str(verdict),
            provider=chosen,
            wait=float(seconds),
            probe=token if verdict == "probe" else None,
            skipped=tuple(c.provider for c in passed),
            change=CircuitChange(chosen, "half_open") if change and chosen else None,
        )
        if admission.change is not None:
            report(admission.change)
        return admission

    def _call(self, candidates: Sequence[Candidate]) -> tuple[list[str], list[Any]]:
        if not candidates:
            raise ValueError("admit needs at least one provider")
        keys, settings = self._plan(tuple(candidates))
        token = f"{self._token_prefix}-{next(self._tokens)}"
        return keys, ["" if self.clock is None else repr(self.clock()), token, *settings]

    def _plan(self, candidates: tuple[Candidate, ...]) -> tuple[list[str], list[Any]]:
        """The keys and fixed arguments of a chain, worked out once (a few chains per process)."""
        plan = self._plans.get(candidates)
        if plan is None:
            keys: list[str] = []
            settings: list[Any] = [repr(float(self.circuits.probe_timeout))]
            for candidate in candidates:
                own = self.keys.provider_rate(candidate.provider)
                sender = self.keys.sender_rate(candidate.provider, candidate.sender) if candidate.sender else own
                keys += [self.keys.circuit(candidate.provider), own, sender]
                sender_rate = self.rates.of_sender(candidate.provider) if candidate.sender else 0.0
                settings += [
                    repr(float(self.rates.of(candidate.provider))),
                    repr(float(sender_rate)),
                    str(self.rates.burst),
                ]
            plan = (keys, settings)
            if len(self._plans) < 1024:  # sender numbers are few; never grow without bound
                self._plans[candidates] = plan
        return plan


def _text(part: Any) -> str:
    return as_text(part) if isinstance(part, bytes | str) else str(part)
