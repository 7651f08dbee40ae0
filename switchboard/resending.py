"""Sending failed deliveries again on purpose, once their cause is fixed.

A delivery the switchboard gave up on for a reason an operator can fix (refused credentials,
no sender number, a broken template, retries exhausted) left its event in the bus's failed
list. Resending marks the record ``requeued`` (a fresh attempt budget: the claim lets it
through) and puts that event back on its queue. Idempotency still holds: a delivery already
sent is never resent, and one that failed for good about its recipient is final.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bus.stores.failures import Failure, Failures
from switchboard.deliveries import PROVIDER_STATUSES, Deliveries, Status

SENT = (Status.ACCEPTED.value, Status.SENT.value, Status.PARTIAL.value, *(s.value for s in PROVIDER_STATUSES))


@dataclass(frozen=True, slots=True)
class Resent:
    """What resending one delivery did."""

    delivery_id: str
    outcome: str
    """``requeued``, or why not: already sent, not in the failed list (final), no such delivery."""

    @property
    def requeued(self) -> bool:
        return self.outcome == "requeued"

    def to_json(self) -> dict[str, str]:
        return {"delivery_id": self.delivery_id, "outcome": self.outcome}


def resend(deliveries: Deliveries, failures: Failures, delivery_ids: Iterable[str], now: float) -> list[Resent]:
    """Put each delivery's failed event back on its queue, its record marked ``requeued``."""
    records = {delivery_id: deliveries.get(delivery_id) for delivery_id in dict.fromkeys(delivery_ids)}
    wanted = {
        key: delivery_id
        for delivery_id, record in records.items()
        if record is not None
        for key in {record.fields.get("bus_id"), record.fields.get("request_id")} - {None, ""}
    }
    found: dict[str, Failure] = {}
    for failure in failures.iterate() if wanted else ():
        attributes = failure.attributes
        for key in (attributes.get("bus_id"), attributes.get("idempotency_key")):
            if isinstance(key, str) and key in wanted:
                found.setdefault(wanted[key], failure)
    done = []
    for delivery_id, record in records.items():
        if record is None:
            done.append(Resent(delivery_id, "no such delivery"))
        elif record.status in SENT:
            done.append(Resent(delivery_id, "sent already: not sent again"))
        elif delivery_id not in found:
            reason = record.fields.get("reason") or record.status
            done.append(Resent(delivery_id, f"not in the failed list ({reason}): nothing to resend"))
        else:
            deliveries.update(delivery_id, now, status=Status.REQUEUED.value)
            requeued = failures.retry(found[delivery_id])
            done.append(Resent(delivery_id, "requeued" if requeued else "its failed entry went meanwhile"))
    return done
