"""Circuit breakers per provider, kept in Redis so every worker process sees the same state.

A circuit opens after ``failures`` transient failures in a row, or when more than
``failure_rate`` of the sends in the last ``window`` seconds failed (once at least
``min_requests`` were made), and at once when the provider rejects our configuration.
After ``cooldown`` seconds one real send may go through as the probe (``admission`` hands
that permit to exactly one caller across processes); its success closes the circuit, its
failure opens it again. The probe's permit expires after ``probe_timeout`` in case its
worker dies. Answers to sends admitted before the circuit opened change nothing.

Each change of state happens in one script, so exactly one caller sees it: that caller
gets a CircuitChange back (and the change is logged once) to publish
``provider_circuit_opened`` / ``_closed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bus.backend.connection import as_text, pipe_eval
from switchboard.errors import ProviderConfigurationError, ProviderError, SettingsError
from switchboard.keys import SwitchboardKeys

log = logging.getLogger("switchboard.circuits")

NOW_LUA = """
local function now_of(arg)
  local now = tonumber(arg)
  if now then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""
"""The caller's clock when it gives one, else the Redis server's (hosts with skewed clocks agree)."""

# KEYS: the circuit. ARGV: now, outcome (ok|fail|config), probe token, failures, failure_rate,
# window, min_requests, cooldown, reason. Returns the change ('' | 'opened' | 'closed').
_RECORD = (
    NOW_LUA
    + """
local now = now_of(ARGV[1])
local outcome, token = ARGV[2], ARGV[3]
local limit, rate, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local min_requests, cooldown, reason = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local h = redis.call('HMGET', KEYS[1], 'state', 'probe', 'failures', 'bucket', 'ok', 'fail', 'prev_ok', 'prev_fail')
local state = h[1] or 'closed'
local function open()
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'until', now + cooldown, 'reason', reason,
    'probe', '', 'probe_until', 0, 'changed_at', now)
  return 'opened'
end
if state == 'half_open' then
  if token == '' or token ~= h[2] then return '' end
  if outcome == 'ok' then
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], 'state', 'closed', 'changed_at', now)
    return 'closed'
  end
  return open()
end
if state == 'open' then return '' end
local bucket = math.floor(now / window)
local ok, fail = tonumber(h[5]) or 0, tonumber(h[6]) or 0
local prev_ok, prev_fail = tonumber(h[7]) or 0, tonumber(h[8]) or 0
local stored = tonumber(h[4]) or bucket
if stored ~= bucket then
  if stored == bucket - 1 then prev_ok, prev_fail = ok, fail else prev_ok, prev_fail = 0, 0 end
  ok, fail = 0, 0
end
local failures = tonumber(h[3]) or 0
if outcome == 'ok' then ok, failures = ok + 1, 0 else fail, failures = fail + 1, failures + 1 end
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', failures, 'bucket', bucket, 'ok', ok, 'fail', fail,
  'prev_ok', prev_ok, 'prev_fail', prev_fail)
if outcome == 'ok' then return '' end
if outcome == 'config' or failures >= limit then return open() end
local weight = 1 - (now / window - bucket)
local total = ok + fail + (prev_ok + prev_fail) * weight
local failed = fail + prev_fail * weight
if total >= min_requests and failed / total > rate then return open() end
return ''
"""
)


# KEYS: the circuit. ARGV: the probe token. Frees the probe's permit when it is that token's.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'half_open' and redis.call('HGET', KEYS[1], 'probe') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'probe', '', 'probe_until', 0)
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class CircuitSettings:
    """``[switchboard.circuit]``: when a provider's circuit opens and how it recovers (every provider alike)."""

    failures: int = 5
    """Transient failures in a row that open the circuit."""
    failure_rate: float = 0.5
    """Share of failed sends over ``window`` that opens it, once ``min_requests`` were made."""
    window: float = 60.0
    min_requests: int = 20
    cooldown: float = 30.0
    """Seconds an open circuit waits before one send may probe the provider."""
    probe_timeout: float = 60.0
    """Seconds the probe's permit lasts (a probe whose worker died frees it then)."""

    def __post_init__(self) -> None:
        if self.failures < 1 or self.min_requests < 1:
            raise SettingsError("switchboard.circuit.failures and min_requests must be at least 1")
        if not 0 < self.failure_rate <= 1:
            raise SettingsError("switchboard.circuit.failure_rate must be above 0 and at most 1")
        for name in ("window", "cooldown", "probe_timeout"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"switchboard.circuit.{name} must be greater than 0")


@dataclass(frozen=True, slots=True)
class CircuitChange:
    """A circuit changed state (``opened``, ``half_open`` or ``closed``) because of this caller's call."""

    provider: str
    state: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CircuitState:
    """What the dashboard, the CLI and /metrics show of one provider's circuit."""

    provider: str
    state: str
    failures: int
    recent_sends: int
    recent_failures: int
    opened_at: float | None
    reopens_at: float | None
    reason: str


def failure_reason(error: ProviderError) -> str:
    """What a circuit stores about a failure: its kind and codes, never its text (it may name a recipient)."""
    parts = [type(error).__name__]
    if error.status is not None:
        parts.append(f"status {error.status}")
    if error.code is not None:
        parts.append(f"code {error.code}")
    return " ".join(parts)


class Circuits:
    """Records send outcomes into each provider's circuit and reads the circuits back."""

    def __init__(
        self,
        redis: Any,
        keys: SwitchboardKeys,
        settings: CircuitSettings,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.clock = clock
        """None: the Redis server's clock."""
        self._record = redis.register_script(_RECORD)
        self._release = redis.register_script(_RELEASE)
        self._settings = [s.failures, s.failure_rate, s.window, s.min_requests, s.cooldown] if (s := settings) else []

    def record_success(self, provider: str, probe: str | None = None) -> CircuitChange | None:
        """The provider answered (accepted, or refused the message or recipient for good)."""
        return self._apply(provider, "ok", probe, "")

    def queue_success(self, pipe: Any, provider: str) -> None:
        """Queue a success on a pipeline (e.g. the outcome's). Its reply is never a change: use
        ``record_success`` for a probe, whose success closes the circuit."""
        now = "" if self.clock is None else repr(self.clock())
        pipe_eval(pipe, _RECORD, [self.keys.circuit(provider)], now, "ok", "", *self._settings, "")

    def record_failure(self, provider: str, error: ProviderError, probe: str | None = None) -> CircuitChange | None:
        """A transient failure counts; a configuration error opens the circuit at once."""
        outcome = "config" if isinstance(error, ProviderConfigurationError) else "fail"
        return self._apply(provider, outcome, probe, failure_reason(error))

    def release_probe(self, provider: str, probe: str) -> bool:
        """Give back a probe's permit unused (its send stopped before the provider call: a
        suppressed recipient, a limit), so the next send probes at once rather than after
        ``probe_timeout``."""
        return bool(self._release(keys=[self.keys.circuit(provider)], args=[probe]))

    def states(self, providers: Sequence[str]) -> list[CircuitState]:
        """Every named provider's circuit, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for provider in providers:
            pipe.hgetall(self.keys.circuit(provider))
        return [_state(provider, raw) for provider, raw in zip(providers, pipe.execute(), strict=True)]

    def reset(self, provider: str) -> None:
        """Close a circuit by hand (an operator who fixed the cause)."""
        self.redis.delete(self.keys.circuit(provider))

    def _apply(self, provider: str, outcome: str, probe: str | None, reason: str) -> CircuitChange | None:
        now = "" if self.clock is None else repr(self.clock())
        args = [now, outcome, probe or "", *self._settings, reason]
        change = as_text(self._record(keys=[self.keys.circuit(provider)], args=args))
        if not change:
            return None
        report(CircuitChange(provider, change, reason))
        return CircuitChange(provider, change, reason)


def report(change: CircuitChange) -> None:
    """Log a change of state: called once per change, by the one caller that made it."""
    if change.state == "opened":
        log.warning("circuit of %s OPENED (%s): sends go to the next provider", change.provider, change.reason)
    elif change.state == "half_open":
        log.info("circuit of %s half-open: one send probes it", change.provider)
    else:
        log.warning("circuit of %s closed: the provider answers again", change.provider)


def _state(provider: str, raw: dict[Any, Any]) -> CircuitState:
    fields = {as_text(k): as_text(v) for k, v in raw.items()}

    def number(name: str) -> float:
        try:
            return float(fields.get(name) or 0)
        except ValueError:
            return 0.0

    state = fields.get("state") or "closed"
    is_open = state != "closed"
    return CircuitState(
        provider=provider,
        state=state,
        failures=int(number("failures")),
        recent_sends=int(number("ok") + number("fail")),
        recent_failures=int(number("fail")),
        opened_at=number("opened_at") if is_open else None,
        reopens_at=number("until") if is_open else None,
        reason=fields.get("reason", "") if is_open else "",
    )
