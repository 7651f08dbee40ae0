"""The job envelope and the bus hash inside it: encode and decode, nothing else.

A job is ``{"class":"QueueBus::Worker","args":["<bus json>"]}``: the bus hash is JSON
encoded twice, as Ruby's queue-bus writes it. Writers emit compact JSON with raw UTF-8,
like Ruby; readers accept any valid JSON, ``\\u`` escapes, extra job fields (Node adds
``queue``) and, for old Node writers, an ``args[0]`` that is an object instead of a string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bus.errors import InvalidEvent, MalformedJob
from bus.safejson import read_json

WORKER_CLASS = "QueueBus::Worker"
DRIVER_PROXY = "QueueBus::Driver"
RIDER_PROXY = "::QueueBus::Rider"
PUBLISHER_PROXY = "QueueBus::Publisher"
HEARTBEAT_PROXY = "QueueBus::Heartbeat"

Attributes = dict[str, Any]

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode = _encoder.encode
_decode = read_json


def dumps(value: Any) -> str:
    """Compact JSON as Ruby's ``JSON.generate`` writes it."""
    return _encode(value)


def encode_attributes(attributes: Attributes) -> str:
    """The bus hash as JSON; raises :class:`InvalidEvent` before anything is written."""
    try:
        return _encode(attributes)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"attributes are not JSON-serialisable: {exc}") from None


def encode_job(bus_json: str, extra: dict[str, Any] | None = None) -> str:
    """Wrap an encoded bus hash in the Resque job envelope."""
    job = '{"class":"' + WORKER_CLASS + '","args":[' + _encode(bus_json) + "]"
    if extra:
        for key, value in extra.items():
            job += "," + _encode(key) + ":" + _encode(value)
    return job + "}"


ENVELOPE_ALLOWANCE = 4096
"""Room for the envelope around an event and its own fields (class, queue, bus_attempt)."""
_ID_IN_JOB = re.compile(rb'bus_id\\*"\s*:\s*\\*"([0-9A-Za-z_.:-]{1,80})')
_TYPE_IN_JOB = re.compile(rb'bus_event_type\\*"\s*:\s*\\*"([0-9A-Za-z_.:-]{1,200})')


def truncated_payload(raw: bytes, size: int, klass: str | None = None) -> dict[str, Any]:
    """What the failed list keeps of an oversized job: its class, ``bus_id`` and event type (found
    in its first 64 KiB without parsing it), and that it was cut."""
    head = raw[:65536]
    kept: dict[str, Any] = {"bus_truncated": True, "bus_size": size}
    for name, pattern in (("bus_id", _ID_IN_JOB), ("bus_event_type", _TYPE_IN_JOB)):
        found = pattern.search(head)
        if found:
            kept[name] = found.group(1).decode()
    return {"class": klass, "args": [dumps(kept)]}


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8, without encoding it when the answer is clear from its length."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass(slots=True)
class Job:
    """A decoded job: the raw bytes as stored (for acks) and the bus hash inside."""

    raw: bytes
    klass: str
    attributes: Attributes
    extra: dict[str, Any] = field(default_factory=dict)
    proxy: str = ""
    """The bus hash's ``bus_class_proxy``: which part of the bus runs this job."""
    size: int = 0
    """Bytes of the bus hash's JSON (what ``max_event_bytes`` limits)."""

    @property
    def attempt(self) -> int:
        """How many times this job has been retried after a failure (ours)."""
        value = self.extra.get("bus_attempt", 0)
        return value if isinstance(value, int) else 0

    def payload(self) -> dict[str, Any]:
        """The job as Resque stores it in a failure entry (our own fields removed)."""
        payload = _decode(self.raw.decode("utf-8", "replace"))
        if isinstance(payload, dict):
            payload.pop("bus_attempt", None)
            return payload
        return {"class": self.klass, "args": [dumps(self.attributes)]}


def bus_hash(job: dict[str, Any]) -> Attributes:
    """The bus hash inside an already decoded job, or {} when it holds none (for display)."""
    args = job.get("args")
    inner = args[0] if isinstance(args, list) and args else None
    if isinstance(inner, str):
        try:
            inner = _decode(inner)
        except ValueError:
            return {}
    return inner if isinstance(inner, dict) else {}


def decode_job(raw: bytes) -> Job:
    """Decode a stored job; every way it can be wrong raises :class:`MalformedJob`."""
    try:
        envelope = _decode(raw)
    except UnicodeDecodeError:
        raise MalformedJob("job is not valid UTF-8") from None
    except ValueError as exc:
        raise MalformedJob(f"job is not valid JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise MalformedJob("job is not a JSON object")
    klass = envelope.get("class")
    args = envelope.get("args")
    if not isinstance(klass, str):
        raise MalformedJob("job has no class")
    if not isinstance(args, list) or not args:
        raise MalformedJob("job has no args")
    inner = args[0]
    if isinstance(inner, str):
        try:
            attributes = _decode(inner)
        except ValueError as exc:
            raise MalformedJob(f"job argument is not valid JSON: {exc}") from None
    else:
        attributes = inner
    if not isinstance(attributes, dict):
        raise MalformedJob("job argument is not a JSON object")
    extra = {k: v for k, v in envelope.items() if k not in ("class", "args")} if len(envelope) > 2 else {}
    proxy = attributes.get("bus_class_proxy")
    size = utf8_size(inner) if isinstance(inner, str) else len(raw)
    return Job(
        raw=raw,
        klass=klass,
        attributes=attributes,
        extra=extra,
        proxy=proxy if isinstance(proxy, str) else "",
        size=size,
    )
