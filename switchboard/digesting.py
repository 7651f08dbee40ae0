"""Digests in the send path: a template with ``[digest]`` collects its events, then one flush sends them.

The first event of a window schedules the flush with delayed publish (``switchboard_digest_flush``
when the window ends); the event that fills it (``max_items``) closes it and publishes its flush
at once. The flush takes the window's items,
renders the template once with ``items`` (each event's data, in order), ``count``, ``first`` and
``last`` (the last event's own data fields as well), and sends it through the normal send path
(preferences, suppressions and the rest apply) under an idempotency key made of the window: a
flush redone after a worker died finds the same items and the same key, so the message goes out
once, and its items are forgotten only after the send is decided.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from bus import Bus, Reject
from switchboard.channels import Channel
from switchboard.digests import Digests, DigestSpec, Flush, digest_id_of
from switchboard.errors import TemplateError
from switchboard.events import BY_CHANNEL, Notification
from switchboard.preferences import recipient_key
from switchboard.templating import TemplateStore

log = logging.getLogger("switchboard.digests")

FLUSH_EVENT = "switchboard_digest_flush"
_ID = re.compile(r"^[0-9a-f]{32}$")
Send = Callable[[str, dict[str, Any]], Awaitable[None]]


class Digester:
    """Collects the events of digest templates, and flushes each window as one send."""

    def __init__(self, bus: Bus, digests: Digests, templates: TemplateStore) -> None:
        self.bus = bus
        self.digests = digests
        self.templates = templates

    def spec_of(self, channel: Channel, template: str | None) -> DigestSpec | None:
        if not template:
            return None
        try:
            return self.templates.get(channel, template).digest
        except TemplateError:
            return None  # rendering says what is wrong with it

    def is_digest(self, notification: Notification) -> bool:
        """Is the event's template a digest (collected rather than sent)? From memory, no Redis."""
        return self.spec_of(notification.CHANNEL, notification.template) is not None

    def collect(self, notification: Notification, attributes: dict[str, Any]) -> bool:
        """Collect the event when its template is a digest (True: not sent now; its window's flush sends it)."""
        channel, template = notification.CHANNEL, notification.template
        spec = self.spec_of(channel, template)
        if spec is None or template is None:
            return False
        key = recipient_key(notification.user_id, notification.recipients()[0])
        digest_id = digest_id_of(channel.value, template, key, [notification.data.get(f) for f in spec.key])
        item_id = notification.idempotency_key or str(attributes.get("bus_id") or "")
        if not item_id:
            raise Reject("the event has neither an idempotency_key nor a bus_id")
        collected = self.digests.collect(digest_id, spec, item_id, notification.to_attributes())
        flush = {"digest_id": digest_id, "window": collected.window, "channel": channel.value, "template": template}
        if not collected.window:
            return True  # a redelivered event whose window was sent already
        if collected.closed:
            self.bus.publish(FLUSH_EVENT, flush)
        elif collected.opened or collected.duplicate:
            # a redelivery may be the opener (or closer) whose worker died before scheduling: a flush
            # scheduled twice, or of a window sent already, is harmless
            self.bus.publish_in(spec.window, FLUSH_EVENT, flush)
        return True

    async def flush(self, attributes: dict[str, Any], send: Send) -> None:
        """The bus handler for ``switchboard_digest_flush``: one window, sent as one message, then forgotten."""
        digest_id, window = attributes.get("digest_id"), attributes.get("window")
        channel, template = attributes.get("channel"), attributes.get("template")
        if not (isinstance(digest_id, str) and _ID.match(digest_id) and isinstance(window, str) and _ID.match(window)):
            raise Reject("switchboard_digest_flush: digest_id and window must be ids this switchboard issued")
        if channel not in {c.value for c in Channel} or not isinstance(template, str):
            raise Reject("switchboard_digest_flush: unknown channel or template")
        spec = self.spec_of(Channel(channel), template) or DigestSpec(window=3600.0)
        state, items = await asyncio.to_thread(self.digests.take, digest_id, window, spec)
        if state is Flush.GONE:
            return
        if items:
            model = BY_CHANNEL[Channel(channel)]
            await send(model.EVENT_TYPE, digest_event(items, f"digest:{digest_id}:{window}"))
            log.info("digest %s: %d item(s) sent as one %s", digest_id, len(items), model.EVENT_TYPE)
        await asyncio.to_thread(self.digests.sent, digest_id, window)


def digest_event(items: list[dict[str, Any]], idempotency_key: str) -> dict[str, Any]:
    """The one event a window's items become: the last event, with every item's data in ``items``."""
    datas: list[dict[str, Any]] = [_data(item) for item in items]
    event = {k: v for k, v in items[-1].items() if k not in ("send_at", "idempotency_key")}
    event["data"] = {**datas[-1], "items": datas, "count": len(items), "first": datas[0], "last": datas[-1]}
    event["idempotency_key"] = idempotency_key
    return event


def _data(item: dict[str, Any]) -> dict[str, Any]:
    data = item.get("data")
    return data if isinstance(data, dict) else {}
