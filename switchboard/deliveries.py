"""Delivery records: one per notification request, claimed before the provider call.

The record doubles as the idempotency guard. Claiming is one atomic step on the record's
key: a redelivered request whose record says ``sent`` (or failed for good) is not sent
again; one still ``sending`` elsewhere waits. The window that remains: a worker that dies
after the provider accepted a message but before it recorded ``sent`` leaves the record
``sending``; once that is older than ``stale_after``, a redelivery sends again.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bus.backend.connection import as_text, is_cluster, pipe_eval
from bus.safejson import read_json
from switchboard.keys import SwitchboardKeys


class Status(StrEnum):
    """Where a delivery stands. Every status but ``sending``, ``retrying``, ``stalled`` and ``requeued``
    is final for the send; an accepted one moves on with the provider's word (its webhooks)."""

    SENDING = "sending"
    RETRYING = "retrying"
    ACCEPTED = "accepted"
    """The provider accepted the message (for every recipient); its webhooks may say more later."""
    SENT = "sent"
    """What ``accepted`` was called before provider webhooks: records stored then still say it."""
    DELIVERED = "delivered"
    """The provider says the message reached the recipient's server or handset."""
    DEFERRED = "deferred"
    """The receiving server put it off for now; the provider keeps trying."""
    BOUNCED = "bounced"
    """The receiving server refused it (``provider_code``: ``bounce`` hard, ``blocked`` soft)."""
    DROPPED = "dropped"
    """The provider did not send it (its own suppression list, an invalid message)."""
    COMPLAINED = "complained"
    """The recipient marked it as spam (the recipient is suppressed)."""
    UNDELIVERED = "undelivered"
    """The carrier could not deliver the SMS (``error_code`` is Twilio's 30xxx code)."""
    PARTIAL = "partial"
    """A push the provider accepted for some device tokens only (each token's outcome is in ``targets``)."""
    FAILED = "failed"
    """The provider said no for good, or the request can never be sent as given (``reason`` says which)."""
    SUPPRESSED = "suppressed"
    OPTED_OUT = "opted_out"
    """The recipient turned the message's category off (their preferences): not sent."""
    STALLED = "stalled"
    """Given up for now (retries exhausted, template broken): ``switchboard deliveries retry`` resumes it."""
    UNKNOWN = "unknown"
    """The provider got the request but never answered (a timeout): it may or may not have sent it."""
    REQUEUED = "requeued"
    """An operator asked for it to be sent again (``switchboard deliveries retry``): a fresh attempt budget."""
    RATE_LIMITED = "rate_limited"
    """Not sent: every recipient had their share of messages in the per-recipient limit's window."""
    HELD = "held"
    """Held through the recipient's quiet hours: published again when they end (``held_until``)."""


PROVIDER_STATUSES = (
    Status.DELIVERED,
    Status.DEFERRED,
    Status.BOUNCED,
    Status.DROPPED,
    Status.COMPLAINED,
    Status.UNDELIVERED,
)
"""What the provider's webhooks move an accepted delivery to."""
PROGRESS = {"unknown": 0, "accepted": 1, "sent": 1, "deferred": 2}
PROGRESS |= {"delivered": 3, "bounced": 3, "dropped": 3, "undelivered": 3, "complained": 4}
"""How far along a delivery is, by status: provider events only ever move it forward (``unknown``, a
timeout once the provider had the request, moves on when the provider says it sent the message)."""
FINAL = (
    Status.ACCEPTED,
    Status.SENT,
    Status.PARTIAL,
    Status.FAILED,
    Status.SUPPRESSED,
    Status.OPTED_OUT,
    Status.UNKNOWN,
    Status.RATE_LIMITED,
    *PROVIDER_STATUSES,
)
OUTCOMES = (
    Status.RETRYING,
    Status.ACCEPTED,
    Status.PARTIAL,
    Status.FAILED,
    Status.SUPPRESSED,
    Status.OPTED_OUT,
    Status.STALLED,
    Status.UNKNOWN,
    Status.RATE_LIMITED,
    Status.HELD,
)
"""What a send can end in, each counted as it happens."""


class Reason(StrEnum):
    """Why a delivery failed or stalled, for programs (``reason`` in records and outcome events)."""

    INVALID = "invalid"
    """The event does not fit its schema (``errors`` names every bad field)."""
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    """Its idempotency key was used before for a different message: not sent."""
    RECIPIENT = "recipient"
    """The provider refused a recipient for good (that recipient is suppressed, when it said which)."""
    REFUSED = "refused"
    """The provider refused the message itself for good."""
    CONFIGURATION = "configuration"
    """Our credentials or setup were refused (fix them, then ``switchboard deliveries retry``)."""
    SENDER = "sender"
    """The sender is not allowed by the settings, or not verified with the provider."""
    TEMPLATE = "template"
    RETRIES_EXHAUSTED = "retries_exhausted"
    TIMEOUT = "timeout"
    """No answer from the provider after it got the request: the message may have been sent."""
    RATE_LIMITED = "rate_limited"
    """Over the per-recipient limit (``[switchboard.<channel>] recipient_limit``, or the template's own)."""
    COUNTRY = "country"
    """An SMS to a country outside ``[switchboard.sms] allowed_countries``."""
    PROVIDERS_UNAVAILABLE = "providers_unavailable"
    """Every provider of the channel has its circuit open."""


DAY = 86400
STEP_FIELDS = ("reason", "error", "error_code", "provider", "provider_message_id", "tries", "held_until")
"""What a timeline step keeps of an attempt's outcome (recipients never: errors are masked)."""
PENDING = ":pending"
"""Suffix of a provider event's field while its outcome event is still to be published."""
TIMELINE_LENGTH = 100
"""Steps a delivery's timeline keeps (the newest): attempts and provider events."""


class Claim(StrEnum):
    """What claiming a record found."""

    NEW = "new"
    AGAIN = "again"  # a retry (or a stale attempt) of this request
    BUSY = "busy"  # another attempt is sending right now
    DONE = "done"  # already decided for good: do not send
    CONFLICT = "conflict"  # the key was used before for a different message


# KEYS: the record[, the index of records]. ARGV: now, stale_after, ttl, fingerprint, delivery id,
# then field/value pairs for a new record. The fingerprint says what the message is: the same key
# with another one is a conflict, never a send. A stalled or requeued record (given up, then sent
# again on purpose) starts a fresh attempt budget. With the index (where both keys may be in one
# script: not on a cluster), its trim and the record's entry too: trim first, since an id whose
# record expired may still be there with its old score, and the NX add must replace it.
_CLAIM = """
if KEYS[2] then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[3]))
  redis.call('ZADD', KEYS[2], 'NX', ARGV[1], ARGV[5])
end
local status = redis.call('HGET', KEYS[1], 'status')
local known = redis.call('HGET', KEYS[1], 'fingerprint')
if status and known and known ~= ARGV[4] then return 'conflict' end
if status and status ~= 'sending' and status ~= 'retrying' and status ~= 'stalled' and status ~= 'requeued' then
  return 'done'
end
if status == 'sending' then
  local updated = tonumber(redis.call('HGET', KEYS[1], 'updated_at') or '0')
  if tonumber(ARGV[1]) - updated < tonumber(ARGV[2]) then return 'busy' end
end
if status == 'stalled' or status == 'requeued' then redis.call('HSET', KEYS[1], 'attempts', 0, 'ambiguous', 0) end
if not status then
  for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('HSET', KEYS[1], 'created_at', ARGV[1], 'fingerprint', ARGV[4])
end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'status', 'sending', 'updated_at', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if status then return 'again' end
return 'new'
"""


# What an attempt ended in, in one command (where every key may be in one script: not on a
# cluster): the record's cleared fields removed and its new ones set, the timeline step, the
# outcome counted in all and for its day, and (a fifth key) the provider message id's lookup.
# KEYS: record, timeline, outcomes, outcomes of the day[, provider message]. ARGV: retention,
# the day counter's ttl, the counter's field, the step's JSON, timeline length, delivery id,
# how many fields to clear, those fields, then field/value pairs.
_FINISH = """
local cleared = tonumber(ARGV[7])
if cleared > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 8, 7 + cleared)) end
redis.call('HSET', KEYS[1], unpack(ARGV, 8 + cleared, #ARGV))
redis.call('EXPIRE', KEYS[1], ARGV[1])
if KEYS[5] then redis.call('SET', KEYS[5], ARGV[6], 'EX', ARGV[1]) end
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
redis.call('EXPIRE', KEYS[4], ARGV[2])
return 1
"""


@dataclass(slots=True)
class Delivery:
    """A delivery record as stored (all values are strings in Redis)."""

    id: str
    fields: dict[str, str]

    @property
    def status(self) -> str:
        return self.fields.get("status", "")

    @property
    def attempts(self) -> int:
        return int(self.fields.get("attempts", "0") or 0)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, **self.fields}
        data.pop("recipient_digests", None)
        data.pop("fingerprint", None)
        if "code" in data:  # records written before the field had one name
            data.setdefault("error_code", data.pop("code"))
        for key in ("attempts", "created_at", "updated_at", "accepted_at"):
            if key in data:
                data[key] = _number(data[key])
        if data.get("attempts") is not None:
            data["attempts"] = int(data["attempts"])
        return data


SEARCH_SCAN_LIMIT = 100_000
"""Records a search reads at most, newest first (about a second's work for Redis and us)."""


@dataclass(frozen=True, slots=True)
class Found:
    """A page of search results; ``cut_short`` when older records were not looked at."""

    deliveries: list[Delivery]
    cut_short: bool = False


class Deliveries:
    """Reads and writes delivery records and their index."""

    def __init__(self, redis: Any, keys: SwitchboardKeys, *, retention: int, stale_after: float) -> None:
        self.redis = redis
        self.keys = keys
        self.retention = retention
        self.stale_after = stale_after
        self.scan_limit = SEARCH_SCAN_LIMIT

    def queue_claim(
        self, pipe: Any, delivery_id: str, now: float, initial: dict[str, str], fingerprint: str = ""
    ) -> None:
        """Queue the claim on ``pipe`` (its reply comes first: read it with :func:`claim_of`),
        with the record's index entry and the index trim, so all take one round trip (one
        script, except on a cluster)."""
        args: list[str] = []
        for key, value in initial.items():
            args += [key, value]
        record = self.keys.delivery(delivery_id)
        cluster = is_cluster(self.redis)
        keys = [record] if cluster else [record, self.keys.deliveries]
        pipe_eval(pipe, _CLAIM, keys, now, self.stale_after, self.retention, fingerprint, delivery_id, *args)
        if cluster:  # the index is in another slot; trimmed first, as the script does
            pipe.zremrangebyscore(self.keys.deliveries, "-inf", now - self.retention)
            pipe.zadd(self.keys.deliveries, {delivery_id: now}, nx=True)

    def claim(self, delivery_id: str, now: float, initial: dict[str, str], fingerprint: str = "") -> Claim:
        pipe = self.redis.pipeline(transaction=False)
        self.queue_claim(pipe, delivery_id, now, initial, fingerprint)
        return claim_of(pipe.execute()[0])

    def queue_update(
        self,
        pipe: Any,
        delivery_id: str,
        now: float,
        *,
        clear: tuple[str, ...] = (),
        **fields: Any,
    ) -> None:
        """Queue a change of the record on ``pipe``; ``None`` values are left as they are, ``clear``
        names fields to remove (a sent record keeps no error of an earlier attempt)."""
        values = {k: str(v) for k, v in fields.items() if v is not None}
        values["updated_at"] = str(now)
        record = self.keys.delivery(delivery_id)
        if clear:
            pipe.hdel(record, *clear)
        pipe.hset(record, mapping=values)
        pipe.expire(record, self.retention)

    def queue_uncount(self, pipe: Any, delivery_id: str) -> None:
        """Give back the attempt the claim counted, for one that did not try a provider (held
        through quiet hours, waiting for a provider's rate): only tries spend the retry budget."""
        pipe.hincrby(self.keys.delivery(delivery_id), "attempts", -1)

    def queue_step(self, pipe: Any, delivery_id: str, step: dict[str, Any]) -> None:
        """Queue one entry of the delivery's timeline (every attempt and, later, every provider event)."""
        timeline = self.keys.delivery_timeline(delivery_id)
        pipe.rpush(timeline, json.dumps({k: v for k, v in step.items() if v is not None}))
        pipe.ltrim(timeline, -TIMELINE_LENGTH, -1)
        pipe.expire(timeline, self.retention)

    def timeline(self, delivery_id: str) -> list[dict[str, Any]]:
        """The delivery's steps, oldest first: its attempts and the provider's events (an entry
        nobody can read says so)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.lrange(self.keys.delivery_timeline(delivery_id), 0, -1)
        pipe.hgetall(self.keys.delivery_events(delivery_id))
        attempts, events = pipe.execute()
        steps = [_step(raw) for raw in attempts]
        provider = [_step(raw) for field, raw in events.items() if not as_text(field).endswith(PENDING)]
        return steps + sorted(provider, key=_provider_order) if provider else steps

    def update(self, delivery_id: str, now: float, **fields: Any) -> None:
        pipe = self.redis.pipeline(transaction=False)
        self.queue_update(pipe, delivery_id, now, **fields)
        pipe.execute()

    def get(self, delivery_id: str) -> Delivery | None:
        raw = self.redis.hgetall(self.keys.delivery(delivery_id))
        return Delivery(delivery_id, _strings(raw)) if raw else None

    def iterate(self, chunk: int = 200) -> Iterator[Delivery]:
        """Records newest first (expired ones skipped)."""
        start = 0
        while True:
            ids = [as_text(i) for i in self.redis.zrevrange(self.keys.deliveries, start, start + chunk - 1)]
            if not ids:
                return
            pipe = self.redis.pipeline(transaction=False)
            for delivery_id in ids:
                pipe.hgetall(self.keys.delivery(delivery_id))
            for delivery_id, raw in zip(ids, pipe.execute(), strict=True):
                if raw:
                    yield Delivery(delivery_id, _strings(raw))
            start += chunk

    def search(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        recipient_digest: str | None = None,
        since: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Found:
        """Records newest first that match every filter given, reading at most ``scan_limit``
        of them: a search for something rare stops there rather than read every record."""
        out: list[Delivery] = []
        skipped = 0
        for scanned, delivery in enumerate(self.iterate()):
            if scanned >= self.scan_limit:
                return Found(out, cut_short=True)
            f = delivery.fields
            if since is not None and float(f.get("created_at", "0")) < since:
                break
            if status and f.get("status") != status and not (status == Status.ACCEPTED and f.get("status") == "sent"):
                continue
            if channel and f.get("channel") != channel:
                continue
            if recipient_digest and recipient_digest not in f.get("recipient_digests", "").split(","):
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append(delivery)
            if len(out) >= limit:
                break
        return Found(out)

    def queue_finish(
        self,
        pipe: Any,
        delivery_id: str,
        channel: str,
        now: float,
        status: str,
        *,
        clear: tuple[str, ...] = (),
        **fields: Any,
    ) -> None:
        """Queue what an attempt ended in: the record's new status and fields, a timeline step, and
        the outcome counted (one script, except on a cluster, where the keys are in other slots)."""
        provider, message_id = fields.get("provider"), fields.get("provider_message_id")
        step = {"at": now, "status": status, **{k: fields.get(k) for k in STEP_FIELDS}}
        tries = step.get("tries")
        if isinstance(tries, str):
            step["tries"] = json.loads(tries)  # stored as JSON text in the record
        if is_cluster(self.redis):
            self.queue_update(pipe, delivery_id, now, clear=clear, status=status, **fields)
            if provider and message_id:  # webhooks without our delivery id find the record by this
                pipe.set(self.keys.provider_message(str(provider), str(message_id)), delivery_id, ex=self.retention)
            self.queue_step(pipe, delivery_id, step)
            self.queue_outcome(pipe, channel, status, now)
            return
        keys = [
            self.keys.delivery(delivery_id),
            self.keys.delivery_timeline(delivery_id),
            self.keys.outcomes,
            self.keys.outcomes_on(utc_day(now)),
        ]
        if provider and message_id:
            keys.append(self.keys.provider_message(str(provider), str(message_id)))
        values: list[str] = []
        for key, value in fields.items():
            if value is not None:
                values += [key, str(value)]
        values += ["status", status, "updated_at", str(now)]
        pipe_eval(
            pipe,
            _FINISH,
            keys,
            self.retention,
            self.retention + DAY,
            f"{channel}:{status}",
            json.dumps({k: v for k, v in step.items() if v is not None}),
            TIMELINE_LENGTH,
            delivery_id,
            len(clear),
            *clear,
            *values,
        )

    def finish(
        self, delivery_id: str, channel: str, now: float, status: str, *, clear: tuple[str, ...] = (), **fields: Any
    ) -> None:
        pipe = self.redis.pipeline(transaction=False)
        self.queue_finish(pipe, delivery_id, channel, now, status, clear=clear, **fields)
        pipe.execute()

    def queue_outcome(self, pipe: Any, channel: str, status: str, now: float) -> None:
        """Count an outcome, in all and for its day, with the record's own writes: /metrics and
        the dashboard read these counters instead of every record. A write retried after a
        lost reply may count twice."""
        field, day = f"{channel}:{status}", self.keys.outcomes_on(utc_day(now))
        pipe.hincrby(self.keys.outcomes, field, 1)
        pipe.hincrby(day, field, 1)
        pipe.expire(day, self.retention + DAY)

    def outcome_totals(self) -> dict[str, dict[str, int]]:
        """Every outcome counted so far, by channel and status."""
        return _by_channel(self.redis.hgetall(self.keys.outcomes))

    def outcomes_since(self, now: float, days: int) -> dict[str, dict[str, int]]:
        """Outcomes of the last ``days`` UTC days, today included, by channel and status."""
        pipe = self.redis.pipeline(transaction=False)
        for back in range(days):
            pipe.hgetall(self.keys.outcomes_on(utc_day(now - back * DAY)))
        total: dict[str, dict[str, int]] = {}
        for raw in pipe.execute():
            for channel, by_status in _by_channel(raw).items():
                mine = total.setdefault(channel, {})
                for status, count in by_status.items():
                    mine[status] = mine.get(status, 0) + count
        return total


class Suppressions:
    """Recipients not to contact again on a channel (invalid, unsubscribed, unregistered)."""

    def __init__(self, redis: Any, keys: SwitchboardKeys) -> None:
        self.redis = redis
        self.keys = keys

    def add(self, channel: str, digest: str, masked: str, reason: str, now: float, code: str | None = None) -> bool:
        entry = json.dumps({"recipient": masked, "reason": reason, "code": code, "added_at": now})
        return bool(self.redis.hset(self.keys.suppressions(channel), digest, entry))

    def remove(self, channel: str, digest: str) -> bool:
        return bool(self.redis.hdel(self.keys.suppressions(channel), digest))

    def queue_lookup(self, pipe: Any, channel: str, digests: list[str]) -> None:
        """Queue the lookup of these (one or more) digests; read its reply with :meth:`found`."""
        pipe.hmget(self.keys.suppressions(channel), digests)

    @staticmethod
    def found(digests: list[str], reply: list[Any]) -> set[str]:
        return {d for d, v in zip(digests, reply, strict=True) if v is not None}

    def suppressed(self, channel: str, digests: list[str]) -> set[str]:
        """Which of these recipient digests are suppressed."""
        if not digests:
            return set()
        return self.found(digests, self.redis.hmget(self.keys.suppressions(channel), digests))

    def count(self, channel: str) -> int:
        """Recipients suppressed on ``channel``, without reading them."""
        return int(self.redis.hlen(self.keys.suppressions(channel)))

    def list(self, channel: str) -> list[dict[str, Any]]:
        """Every suppression of ``channel``, oldest first; an entry nobody can read says so."""
        out = []
        for digest, raw in self.redis.hgetall(self.keys.suppressions(channel)).items():
            out.append({**_suppression_entry(raw), "channel": channel, "digest": as_text(digest)})
        return sorted(out, key=lambda e: e["added_at"] or 0)


def _provider_order(step: dict[str, Any]) -> tuple[float, int]:
    """Provider events by time, and within a second (SendGrid's resolution) by progress."""
    return (_number(step.get("at")) or 0.0, PROGRESS.get(str(step.get("status")), 0))


def _step(raw: bytes | str) -> dict[str, Any]:
    try:
        step = read_json(raw)
    except ValueError:
        step = None
    return step if isinstance(step, dict) else {"status": "unreadable"}


def _suppression_entry(raw: bytes | str) -> dict[str, Any]:
    try:
        entry = read_json(raw)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        return {"reason": "unreadable entry (not a JSON object)", "added_at": None}
    return {**entry, "added_at": _number(entry.get("added_at"))}


def _number(value: Any) -> float | None:
    """A stored number, or None when what is stored is not one (a record edited by hand)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def utc_day(epoch: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(epoch))


def _by_channel(raw: dict[Any, Any]) -> dict[str, dict[str, int]]:
    """Counters by channel and status (``sent``, counted before it was called ``accepted``, joins it)."""
    out: dict[str, dict[str, int]] = {}
    for field, count in raw.items():
        channel, _, status = as_text(field).partition(":")
        status = Status.ACCEPTED.value if status == Status.SENT.value else status
        mine = out.setdefault(channel, {})
        mine[status] = mine.get(status, 0) + int(count)
    return out


def claim_of(reply: Any) -> Claim:
    return Claim(reply.decode() if isinstance(reply, bytes) else reply)


def _strings(raw: dict[Any, Any]) -> dict[str, str]:
    return {as_text(k): as_text(v) for k, v in raw.items()}
