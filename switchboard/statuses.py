"""Applying the providers' word (``provider_status`` events from ``switchboard hooks``) to deliveries.

An accepted delivery moves on to delivered, deferred, bounced, dropped, complained or
undelivered. One script on the record's hash slot does the deciding: a provider event seen
before (SendGrid's ``sg_event_id``, Twilio's MessageSid + status) changes nothing, and a
status only ever moves forward (a late ``deferred`` never overwrites ``delivered``), so
events may arrive in any order and any number of times. Every event joins the delivery's
timeline. Outcomes the publishing app can act on are announced (``email_bounced``...),
at least once: the event stays marked pending until its announcement is out.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from bus import Bus, RetryLater
from bus.backend.connection import as_text, pipe_eval
from bus.safejson import read_json
from switchboard.deliveries import PENDING, PROGRESS, Deliveries, Suppressions
from switchboard.keys import SwitchboardKeys

log = logging.getLogger("switchboard.statuses")

FINALS = frozenset({"delivered", "bounced", "dropped", "complained", "undelivered"})
OUTCOME_EVENTS = {
    ("email", "delivered"): "email_delivered",
    ("email", "bounced"): "email_bounced",
    ("email", "complained"): "email_complained",
    ("sms", "delivered"): "sms_delivered",
    ("sms", "undelivered"): "sms_undelivered",
}
DELAY_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 21600, 86400)
"""Upper bounds (seconds) of the accepted-to-delivered histogram on /metrics."""
ANNOUNCED = ("request_id", "idempotency_key", "bus_id", "template", "provider_message_id")
"""What an outcome event repeats of the record (read by the script that decides it)."""
BUSY_RETRY = 2.0
OPT_OUT_CODES = ("twilio:inbound", "21610")
"""Suppressions an inbound START lifts: the recipient's own STOP (by reply, or as Twilio reported it)."""
UNWRITTEN = "-"
"""An event's pending mark while its suppression is still to be written (no outcome event to publish)."""

# A provider event moves a delivery forward only (PROGRESS); a record that never reached the
# provider (failed, suppressed) keeps its status.
# An event about another channel or recipient than the record's is 'foreign' (SendGrid signs every
# event of the account, whatever custom_args another sender set): it changes nothing.
# KEYS: the record, its provider events. ARGV: event id, step JSON, status, now, retention,
# outcome event type ('' for none), channel, recipient digest, '1' when the event suppresses (it
# stays pending, UNWRITTEN, until that is written), then field/value pairs the record takes when
# its status moves.
# Replies {verdict, accepted_at or '', pending outcome or '', then the record's ANNOUNCED fields}.
_APPLY = (
    """
local step = redis.call('HGET', KEYS[2], ARGV[1])
if step then
  local pending = redis.call('HGET', KEYS[2], ARGV[1] .. ':pending')
  if not pending then return {'duplicate', '', ''} end
  return {'duplicate', '', pending, unpack(redis.call('HMGET', KEYS[1], {ANNOUNCED}))}
end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', '', ''} end
local owner = redis.call('HMGET', KEYS[1], 'channel', 'recipient_digests')
if owner[1] ~= ARGV[7] or not string.find(',' .. (owner[2] or '') .. ',', ',' .. ARGV[8] .. ',', 1, true) then
  return {'foreign', '', ''}
end
if status == 'sending' or status == 'retrying' then return {'busy', '', ''} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local unwritten = ''
if ARGV[9] ~= '' then
  unwritten = '{UNWRITTEN}'
  redis.call('HSET', KEYS[2], ARGV[1] .. ':pending', unwritten)
end
local ranks = {RANKS}
local before, after = ranks[status], ranks[ARGV[3]]
local accepted_at = redis.call('HGET', KEYS[1], 'accepted_at')
if before == nil or after == nil or after <= before then return {'kept', accepted_at or '', unwritten} end
if not accepted_at and (status == 'accepted' or status == 'sent') then
  accepted_at = redis.call('HGET', KEYS[1], 'updated_at')
  if accepted_at then redis.call('HSET', KEYS[1], 'accepted_at', accepted_at) end
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated_at', ARGV[4])
for i = 10, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], ARGV[1] .. ':pending', ARGV[6]) end
if ARGV[6] == '' then return {'changed', accepted_at or '', unwritten} end
return {'changed', accepted_at or '', ARGV[6], unpack(redis.call('HMGET', KEYS[1], {ANNOUNCED}))}
""".replace("{RANKS}", "{" + ", ".join(f"{status} = {rank}" for status, rank in PROGRESS.items()) + "}")
    .replace("{ANNOUNCED}", ", ".join(f"'{name}'" for name in ANNOUNCED))
    .replace("{UNWRITTEN}", UNWRITTEN)
)


class StatusApplier:
    """The bus handler for ``provider_status``: record, timeline, outcome event, suppression."""

    def __init__(
        self,
        *,
        bus: Bus,
        deliveries: Deliveries,
        suppressions: Suppressions,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.deliveries = deliveries
        self.suppressions = suppressions
        self.keys: SwitchboardKeys = deliveries.keys
        self.clock = clock

    def handle(self, attributes: dict[str, Any]) -> None:
        event = _checked(attributes)
        if event is None:
            log.warning("provider_status event without the fields it needs: ignored")
            return
        if event["status"] in ("opted_out", "opted_in"):
            self._inbound(event)
            return
        delivery_id = self._delivery_id(event)
        kind, accepted_at, pending, record = self._apply(delivery_id, event) if delivery_id else ("missing", "", "", {})
        if kind == "busy":
            raise RetryLater(f"delivery {delivery_id} is still being sent", BUSY_RETRY)
        if kind == "missing":
            log.info("%s event %s matches no delivery record", event["provider"], event["event_id"])
        if kind == "foreign":
            log.warning(
                "%s event %s names delivery %r but another channel or recipient: ignored",  # %r: one line
                event["provider"],
                event["event_id"],
                delivery_id,
            )
        # A duplicate changes nothing (an operator may have lifted its suppression since), unless its
        # announcement or suppression is still pending: then it may have been lost (a crash, Redis).
        suppress = event["suppress"] and (kind != "duplicate" or bool(pending))
        writes = self._writes(event, kind, accepted_at, suppress)
        if pending and pending != UNWRITTEN and delivery_id:
            self._announce(delivery_id, event, pending, record, writes)
            return
        pipe = self.deliveries.redis.pipeline(transaction=False)
        writes(pipe)
        pipe.execute()
        if pending == UNWRITTEN and delivery_id:  # only once the suppression is written
            self.deliveries.redis.hdel(self.keys.delivery_events(delivery_id), f"{event['event_id']}{PENDING}")

    def _delivery_id(self, event: dict[str, Any]) -> str | None:
        """The delivery our id names, else the one the provider's message id was recorded for."""
        if event.get("delivery_id"):
            return str(event["delivery_id"])
        if event.get("message_id"):
            found = self.deliveries.redis.get(self.keys.provider_message(event["provider"], event["message_id"]))
            return as_text(found) if found is not None else None
        return None

    def _apply(self, delivery_id: str, event: dict[str, Any]) -> tuple[str, str, str, dict[str, str]]:
        step = {
            "at": event["at"],
            "status": event["status"],
            "provider": event["provider"],
            "event": event["event"],
            "event_id": event["event_id"],
            "reason": event.get("reason"),
            "error_code": event.get("code"),
        }
        status = event["status"]
        outcome = OUTCOME_EVENTS.get((event["channel"], status), "")
        fields = ["provider_event", event["event"]]
        if event.get("reason"):
            fields += ["provider_reason", event["reason"]]
        if event.get("code"):
            fields += ["provider_code", event["code"]]
        pipe = self.deliveries.redis.pipeline(transaction=False)
        pipe_eval(
            pipe,
            _APPLY,
            [self.keys.delivery(delivery_id), self.keys.delivery_events(delivery_id)],
            event["event_id"],
            json.dumps({k: v for k, v in step.items() if v is not None}),
            status,
            self.clock(),
            self.deliveries.retention,
            outcome,
            event["channel"],
            event["recipient_digest"],
            "1" if event["suppress"] else "",
            *fields,
        )
        kind, accepted_at, pending, *fields = pipe.execute()[0]
        record = {name: as_text(value) for name, value in zip(ANNOUNCED, fields, strict=False) if value}
        return as_text(kind), as_text(accepted_at), as_text(pending), record

    def _writes(self, event: dict[str, Any], kind: str, accepted_at: str, suppress: bool) -> Callable[[Any], None]:
        """What goes with the outcome: the suppression, the counters of /metrics."""

        def writes(pipe: Any) -> None:
            if suppress:
                self._suppress(pipe, event)
            if kind != "changed" or event["status"] not in FINALS:
                return
            channel, status = event["channel"], event["status"]
            pipe.hincrby(self.keys.delivery_finals, f"{channel}:{status}", 1)
            if status == "delivered" and accepted_at:
                delay = max(0.0, float(event["at"]) - float(accepted_at))
                bucket = next((str(bound) for bound in DELAY_BUCKETS if delay <= bound), "inf")
                pipe.hincrby(self.keys.delivery_delays, f"{channel}:in:{bucket}", 1)  # cumulated when read
                pipe.hincrby(self.keys.delivery_delays, f"{channel}:count", 1)
                pipe.hincrbyfloat(self.keys.delivery_delays, f"{channel}:sum", delay)

        return writes

    def _announce(
        self,
        delivery_id: str,
        event: dict[str, Any],
        outcome: str,
        f: dict[str, str],
        writes: Callable[[Any], None],
    ) -> None:
        """Publish the outcome event with the writes, and clear the event's pending mark."""
        announcement = {
            "delivery_id": delivery_id,
            "request_id": f.get("request_id"),
            "idempotency_key": f.get("idempotency_key"),
            "bus_id": f.get("bus_id"),
            "status": event["status"],
            "template": f.get("template"),
            "recipient": event["recipient"],
            "provider": event["provider"],
            "provider_message_id": f.get("provider_message_id") or event.get("message_id"),
            "provider_event": event["event"],
            "reason": event.get("reason"),
            "error_code": event.get("code"),
            "at": event["at"],
        }
        events_key, mark = self.keys.delivery_events(delivery_id), f"{event['event_id']}{PENDING}"
        # A pipeline runs every command even when one is refused: a suppression's mark is cleared only
        # once the pipeline went through (a round trip more, for bounces and complaints only).
        later = bool(event["suppress"])

        def along(pipe: Any) -> None:
            writes(pipe)
            if not later:
                pipe.hdel(events_key, mark)

        self.bus.publish_with(along, outcome, {k: v for k, v in announcement.items() if v not in (None, "")})
        if later:
            self.deliveries.redis.hdel(events_key, mark)

    def _suppress(self, pipe: Any, event: dict[str, Any]) -> None:
        reason = f"{event['status']}: {event['provider']} {event['event']}"
        if event.get("reason"):
            reason += f" ({event['reason']})"
        entry = {
            "recipient": event["recipient"],
            "reason": f"{reason}; event {event['event_id']}",
            "code": f"{event['provider']}:{event['event']}",
            "added_at": self.clock(),
        }
        pipe.hset(self.keys.suppressions(event["channel"]), event["recipient_digest"], json.dumps(entry))
        log.info("suppressed %s on %s: %s", event["recipient"], event["channel"], reason)

    def _inbound(self, event: dict[str, Any]) -> None:
        """An inbound keyword, applied once per inbound message (Twilio callbacks carry no timestamp)."""
        redis = self.deliveries.redis
        seen = self.keys.inbound_seen(event["event_id"])
        # Marked UNWRITTEN first, applied ("1") only once written: a STOP whose write failed is
        # written when the bus runs the job again.
        if not redis.set(seen, UNWRITTEN, nx=True, ex=self.deliveries.retention) and as_text(redis.get(seen)) == "1":
            return  # a replay, or this event run again
        self._opt(event)
        redis.set(seen, 1, ex=self.deliveries.retention)

    def _opt(self, event: dict[str, Any]) -> None:
        """STOP and its kin suppress the number; START and its kin lift an opt-out (only that)."""
        redis = self.deliveries.redis
        if event["status"] == "opted_out":
            pipe = redis.pipeline(transaction=False)
            self._suppress(pipe, event)
            pipe.execute()
            return
        key, digest = self.keys.suppressions(event["channel"]), event["recipient_digest"]
        raw = redis.hget(key, digest)
        try:
            entry = read_json(raw) if raw is not None else None
        except ValueError:
            entry = None
        if isinstance(entry, dict) and str(entry.get("code") or "").startswith(OPT_OUT_CODES):
            self.suppressions.remove(event["channel"], digest)
            log.info("%s opted in again on %s", event["recipient"], event["channel"])


def _checked(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """The event's fields when they are all there (the receiver wrote them; another publisher may not)."""
    needed = {"provider": str, "channel": str, "event_id": str, "event": str, "status": str}
    needed |= {"recipient": str, "recipient_digest": str}
    if any(not isinstance(attributes.get(name), kind) for name, kind in needed.items()):
        return None
    at = attributes.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float):
        return None
    return {**attributes, "suppress": attributes.get("suppress") is True}


class DeliveryStats:
    """What /metrics reads of the provider's outcomes: final statuses and the delivery delay."""

    def __init__(self, redis: Any, keys: SwitchboardKeys) -> None:
        self.redis = redis
        self.keys = keys

    def finals(self) -> dict[str, dict[str, int]]:
        """Deliveries that reached each provider status, by channel (a complaint follows a delivery)."""
        out: dict[str, dict[str, int]] = {}
        for field, count in self.redis.hgetall(self.keys.delivery_finals).items():
            channel, _, status = as_text(field).partition(":")
            out.setdefault(channel, {})[status] = int(count)
        return out

    def delays(self) -> dict[str, tuple[list[tuple[str, int]], float, int]]:
        """Per channel: cumulative (upper bound, count) buckets, the sum of delays and their count."""
        raw = {as_text(k): as_text(v) for k, v in self.redis.hgetall(self.keys.delivery_delays).items()}
        out = {}
        for channel in sorted({field.partition(":")[0] for field in raw}):
            count, below = int(raw.get(f"{channel}:count", "0")), 0
            buckets = []
            for bound in DELAY_BUCKETS:
                below += int(raw.get(f"{channel}:in:{bound}", "0"))
                buckets.append((str(bound), below))
            out[channel] = ([*buckets, ("+Inf", count)], float(raw.get(f"{channel}:sum", "0")), count)
        return out
