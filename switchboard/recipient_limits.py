"""At most N messages per recipient per window, per channel: shared by every worker, never in clear.

Each recipient (a digest, see ``privacy``) has a sorted set of the delivery ids sent to it,
scored by time: an exact sliding window. A delivery is counted once however often it is
retried, so a send that waits and comes back is not refused by its own earlier attempt.
A template may count on its own (an OTP with a tighter limit of its own, or none): its
``[recipient_limit]`` in template.toml gives it a scope separate from its channel's.

Recipients refused lately are kept in a small index (masked, for the CLI and dashboard);
any recipient's count can be looked up by its address, which is turned into its digest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bus.backend.connection import as_text, pipe_eval
from switchboard.circuits import NOW_LUA
from switchboard.keys import SwitchboardKeys
from switchboard.privacy import mask, normalize_recipient, recipient_digest

if TYPE_CHECKING:
    from switchboard.settings import ChannelSettings
    from switchboard.templating import TemplateInfo

# KEYS: the recipient's set. ARGV: now, window, limit, delivery id.
# Returns {1 allowed | 0 refused, count in the window, when the oldest leaves it}.
_COUNT = (
    NOW_LUA
    + """
local now, window, limit = now_of(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or now
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return {1, count, tostring(oldest + window)} end
if count >= limit then return {0, count, tostring(oldest + window)} end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return {1, count + 1, tostring(oldest + window)}
"""
)

# KEYS: the set. ARGV: now, window. Returns {count, when the oldest leaves the window}.
_PEEK = (
    NOW_LUA
    + """
local now, window = now_of(ARGV[1]), tonumber(ARGV[2])
local count = redis.call('ZCOUNT', KEYS[1], now - window, '+inf')
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], now - window, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)[2] or now
return {count, tostring(oldest + window)}
"""
)


@dataclass(frozen=True, slots=True)
class RecipientLimit:
    """``count`` messages per ``window`` seconds per recipient, counted in ``scope`` (a channel,
    or ``template:<channel>/<name>`` for a template with a limit of its own)."""

    scope: str
    count: int
    window: float


def limit_for(channel: str, settings: ChannelSettings, template: TemplateInfo | None) -> RecipientLimit | None:
    """The limit a send counts against: its template's own when it declares one, else its
    channel's; None when that is 0 (no limit)."""
    if template is not None and template.recipient_limit is not None:
        own = template.recipient_limit
        return RecipientLimit(f"template:{template.key}", own.count, own.window) if own.count else None
    if not settings.recipient_limit:
        return None
    return RecipientLimit(channel, settings.recipient_limit, settings.recipient_window)


@dataclass(frozen=True, slots=True)
class RecipientCount:
    """One recipient's standing in a scope: masked, never in clear."""

    recipient: str
    digest: str
    allowed: bool
    count: int
    limit: int
    frees_at: float
    """When the oldest counted message leaves the window (one more is allowed then)."""


class RecipientLimits:
    """Counts sends per recipient; ``check`` decides, ``count`` and ``refused`` show."""

    def __init__(self, redis: Any, keys: SwitchboardKeys, clock: Callable[[], float] | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        """None: the Redis server's clock."""

    def queue_check(self, pipe: Any, limit: RecipientLimit, recipient: str, delivery_id: str) -> None:
        """Queue the check-and-count of one recipient (e.g. with the delivery's claim); read the reply
        with ``verdict``."""
        key = self.keys.recipient_sends(limit.scope, recipient_digest(recipient))
        pipe_eval(pipe, _COUNT, [key], self._now(), limit.window, limit.count, delivery_id)

    def verdict(self, reply: Any, limit: RecipientLimit, recipient: str) -> RecipientCount:
        allowed, count, frees_at = reply
        return RecipientCount(
            recipient=_shown(recipient),
            digest=recipient_digest(recipient),
            allowed=bool(int(allowed)),
            count=int(count),
            limit=limit.count,
            frees_at=float(as_text(frees_at)),
        )

    def check(self, limit: RecipientLimit, recipients: Sequence[str], delivery_id: str) -> list[RecipientCount]:
        """Count this delivery for each recipient still under the limit, in one round trip; the
        refused ones are noted for the dashboard (one more round trip, only then)."""
        pipe = self.redis.pipeline(transaction=False)
        for recipient in recipients:
            self.queue_check(pipe, limit, recipient, delivery_id)
        counts = [self.verdict(reply, limit, r) for reply, r in zip(pipe.execute(), recipients, strict=True)]
        refused = [c for c in counts if not c.allowed]
        if refused:
            self.note_refused(limit, refused)
        return counts

    def note_refused(self, limit: RecipientLimit, refused: Sequence[RecipientCount]) -> None:
        """Remember who was refused lately (masked), kept as long as the window."""
        index = self.keys.rate_limited_recipients(limit.scope)
        pipe = self.redis.pipeline(transaction=False)
        for count in refused:
            pipe.zadd(index, {f"{count.digest} {count.recipient}": count.frees_at - limit.window})
        pipe.expire(index, int(limit.window) + 1)
        pipe.execute()

    def count(self, limit: RecipientLimit, recipient: str) -> RecipientCount:
        """How many messages ``recipient`` got in the window (the CLI's and dashboard's lookup)."""
        key = self.keys.recipient_sends(limit.scope, recipient_digest(recipient))
        count, frees_at = self.redis.eval(_PEEK, 1, key, self._now(), limit.window)
        return RecipientCount(
            _shown(recipient),
            recipient_digest(recipient),
            int(count) < limit.count,
            int(count),
            limit.count,
            float(as_text(frees_at)),
        )

    def refused(self, limit: RecipientLimit, *, newest: int = 50) -> list[RecipientCount]:
        """Recipients refused within the last window, newest first, with their counts now."""
        index = self.keys.rate_limited_recipients(limit.scope)
        now = float(self._now()) if self.clock is not None else _server_time(self.redis)
        self.redis.zremrangebyscore(index, "-inf", now - limit.window)
        entries = [as_text(e) for e in self.redis.zrevrange(index, 0, newest - 1)]
        pipe = self.redis.pipeline(transaction=False)
        for entry in entries:
            pipe_eval(pipe, _PEEK, [self.keys.recipient_sends(limit.scope, entry.partition(" ")[0])], now, limit.window)
        found = []
        for entry, (count, frees_at) in zip(entries, pipe.execute(), strict=True):
            digest, _, shown = entry.partition(" ")
            found.append(
                RecipientCount(
                    shown, digest, int(count) < limit.count, int(count), limit.count, float(as_text(frees_at))
                )
            )
        return found

    def _now(self) -> str:
        return "" if self.clock is None else repr(self.clock())


def _shown(recipient: str) -> str:
    return mask(normalize_recipient(recipient))


def _server_time(redis: Any) -> float:
    seconds, micros = redis.time()
    return float(seconds) + float(micros) / 1_000_000
