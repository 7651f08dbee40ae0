"""Every Redis key the switchboard writes, under the bus namespace (``resque:switchboard:...``)."""

from __future__ import annotations

import functools

from redis.crc import key_slot

from bus.keys import Keys


class SwitchboardKeys:
    """Key names of delivery records, suppressions, the outbox and channel states."""

    __slots__ = ("prefix",)

    def __init__(self, keys: Keys) -> None:
        self.prefix = f"{keys.prefix}switchboard:"

    def delivery(self, delivery_id: str) -> str:
        """Hash: one delivery's record (status, attempts, masked recipient, provider id...)."""
        return f"{self.prefix}delivery:{delivery_id}"

    def delivery_timeline(self, delivery_id: str) -> str:
        """List of one delivery's steps (JSON each): every attempt's outcome, and the provider's events."""
        return f"{self.prefix}delivery:{delivery_id}:timeline"

    def delivery_events(self, delivery_id: str) -> str:
        """Hash provider event id -> JSON step (time, status, masked reason): the provider's word on one
        delivery, the duplicates guard, and ``<id>:pending`` until its outcome event is out. In the
        record's hash slot (its hash tag is the record's key), so one script changes both on Cluster."""
        return f"{same_slot(self.delivery(delivery_id))}:provider_events"

    def provider_message(self, provider: str, message_id: str) -> str:
        """String: the delivery id a provider's message id belongs to (for events that carry no
        delivery id of ours)."""
        return f"{self.prefix}provider_message:{provider}:{message_id}"

    def inbound_seen(self, message_sid: str) -> str:
        """String, set once an inbound SMS (STOP, START...) was applied: a replay changes nothing."""
        return f"{self.prefix}inbound_seen:{message_sid}"

    @property
    def delivery_finals(self) -> str:
        """Hash ``<channel>:<status>`` -> deliveries that reached a provider status (delivered,
        bounced...), never reset: /metrics."""
        return f"{self.prefix}delivery_finals"

    @property
    def delivery_delays(self) -> str:
        """Hash ``<channel>:in:<bucket>`` (deliveries whose delay fell in it, not cumulated), ``:sum``,
        ``:count``: the accepted-to-delivered delay histogram of /metrics."""
        return f"{self.prefix}delivery_delays"

    @property
    def deliveries(self) -> str:
        """Sorted set of delivery ids by creation time: the index for listing and retention."""
        return f"{self.prefix}deliveries"

    def suppressions(self, channel: str) -> str:
        """Hash recipient digest -> JSON (masked recipient, reason, when) of recipients not to contact."""
        return f"{self.prefix}suppressions:{channel}"

    @property
    def outcomes(self) -> str:
        """Hash ``<channel>:<status>`` -> sends that ended so (each retry too), never reset: /metrics."""
        return f"{self.prefix}outcomes"

    def outcomes_on(self, day: str) -> str:
        """The same for one UTC day (``YYYYMMDD``), kept as long as delivery records: the dashboard."""
        return f"{self.prefix}outcomes:{day}"

    @property
    def outbox(self) -> str:
        """List of rendered messages that dev mode 'sent', newest first, capped."""
        return f"{self.prefix}outbox"

    @property
    def channels(self) -> str:
        """Hash channel (or ``email:sender:<address>``) -> JSON state: stopped because the provider
        refused our configuration, and when it is probed again."""
        return f"{self.prefix}channels"

    @property
    def live_channels(self) -> str:
        """Hash channel -> the provider the running workers send it through (``outbox``: dev mode),
        refreshed while they run and expiring after the last one stops: the dashboard's pages."""
        return f"{self.prefix}live_channels"

    def channel_probe(self, scope: str) -> str:
        """String, set while one worker sends the probe of a stopped channel or sender."""
        return f"{self.prefix}channels:probe:{scope}"

    def preferences(self, recipient_key: str) -> str:
        """Hash ``<category>:<channel>`` -> JSON choice of one recipient key (a digest, never an address)."""
        return f"{self.prefix}preferences:{recipient_key}"

    def preference_announcements(self, recipient_key: str) -> str:
        """Hash ``<category>:<channel>`` -> the ``preference_changed`` event a change still owes,
        until it is published. In the preferences' hash slot (their key is its hash tag), so one
        script records a change and what it owes, also on Cluster."""
        return f"{same_slot(self.preferences(recipient_key))}:announcing"

    def digest_items(self, digest_id: str) -> str:
        """List of the items collected for one digest window (JSON each); ``{...}``: one slot per digest."""
        return f"{self.prefix}digest:{{{digest_id}}}:items"

    def digest_window(self, digest_id: str) -> str:
        """String: the id of the window collecting now (set by the first item, with its flush time)."""
        return f"{self.prefix}digest:{{{digest_id}}}:window"

    def digest_seen(self, digest_id: str) -> str:
        """Hash event id -> window of the events collected into a digest lately (a redelivered event is
        not collected twice, and its window's flush is scheduled again)."""
        return f"{self.prefix}digest:{{{digest_id}}}:seen"

    def digest_flushing(self, digest_id: str, window: str) -> str:
        """List: a window's items taken for sending, kept until the digest is recorded (a flush redone after
        a crash finds them here)."""
        return f"{self.prefix}digest:{{{digest_id}}}:flushing:{window}"

    # Provider circuits and rate limits share one hash slot ({providers}): the admission of a
    # send reads and changes several of them in one script, also on Redis Cluster.
    def circuit(self, provider: str) -> str:
        """Hash: one provider's circuit (state, consecutive failures, window counts, probe lease)."""
        return f"{self.prefix}{{providers}}:circuit:{provider}"

    def provider_rate(self, provider: str) -> str:
        """String: the GCRA theoretical arrival time of a provider's next send (epoch seconds)."""
        return f"{self.prefix}{{providers}}:rate:{provider}"

    def sender_rate(self, provider: str, sender: str) -> str:
        """String: the same for one sender number of a provider (Twilio long codes send 1/s)."""
        return f"{self.prefix}{{providers}}:rate:{provider}:sender:{sender}"

    @property
    def rate_waits(self) -> str:
        """Hash provider -> sends that waited because the provider was at its rate, never reset: /metrics."""
        return f"{self.prefix}rate_waits"

    def recipient_sends(self, scope: str, digest: str) -> str:
        """Sorted set: delivery ids sent to one recipient (a digest) in ``scope`` (a channel, or a
        template with a limit of its own), scored by time: the per-recipient limit's window."""
        return f"{self.prefix}recipient_sends:{scope}:{digest}"

    def rate_limited_recipients(self, scope: str) -> str:
        """Sorted set ``<digest> <masked recipient>`` -> when a send to them was last refused."""
        return f"{self.prefix}rate_limited:{scope}"


def same_slot(key: str) -> str:
    """A prefix for keys that must share ``key``'s Cluster hash slot: ``key`` itself when it has a
    hash tag (``{...}``, appending keeps it), else ``key`` made the tag, unless a ``}`` in it (an
    idempotency key holding braces) would end that tag early: then a tag found to hash to ``key``'s
    slot, followed by ``key`` (so the name stays unique)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    if start >= 0 and end > start + 1:
        return key
    if "}" not in key:
        return "{" + key + "}"
    return "{" + _tag_of_slot(key_slot(key.encode())) + "}" + key


@functools.cache
def _tag_of_slot(slot: int) -> str:
    """The first ``slot<n>`` hashing to ``slot`` (some 16,000 tries on average, once per slot)."""
    n = 0
    while key_slot(f"slot{n}".encode()) != slot:
        n += 1
    return f"slot{n}"
