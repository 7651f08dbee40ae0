"""Changing a recipient's preferences, from anywhere: the CLI, the dashboard, an unsubscribe link,
or an app's ``set_preference`` event; each change that changes something is announced as
``preference_changed`` (recipient key, never an address; the ``user_id`` when the change came with one).
A change and its event are recorded in one script (see ``preferences``), so the event is owed until
published: at least once, never lost.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from bus import Bus, Reject
from switchboard.categories import opt_outs
from switchboard.channels import Channel
from switchboard.events import InvalidNotification, check_recipient
from switchboard.preferences import Preference, PreferenceRefused, Preferences, check_change, recipient_key
from switchboard.settings import SwitchboardSettings

log = logging.getLogger("switchboard.preferences")

SET_PREFERENCE = "set_preference"
PREFERENCE_CHANGED = "preference_changed"
MAX_SOURCE = 100


@dataclass(frozen=True, slots=True)
class Change:
    """One choice to record: ``allowed`` for ``category`` on ``channel`` for ``recipient_key``."""

    recipient_key: str
    category: str
    channel: Channel
    allowed: bool
    source: str
    user_id: str | None = None


class PreferenceChanges:
    """Checks a change against the settings, records it, announces it when it changed anything."""

    def __init__(self, bus: Bus, preferences: Preferences, settings: SwitchboardSettings) -> None:
        self.bus = bus
        self.preferences = preferences
        self.settings = settings

    def apply(self, change: Change) -> bool:
        """Record a change (PreferenceRefused when the settings forbid it); True when it changed something."""
        check_change(change.category, change.allowed, opt_outs(self.settings.categories))
        event = self._event(change.recipient_key, change.category, change.channel.value, change.allowed, change.source)
        if change.user_id:
            event["user_id"] = change.user_id
        done = self.preferences.set(
            change.recipient_key, change.category, change.channel, change.allowed, change.source, event
        )
        if done.changed:
            log.info("preference %s on %s: %s (%s)", change.category, change.channel, change.allowed, change.source)
        self._announce(change.recipient_key, done.owed)
        return done.changed

    def clear(
        self,
        key: str,
        source: str,
        *,
        category: str | None = None,
        channel: Channel | None = None,
        user_id: str | None = None,
    ) -> int:
        """Forget choices (back to the defaults: everything sent); each opt-out forgotten is announced."""
        channels = {c.value for c in Channel}

        def event_for(p: Preference) -> dict[str, Any] | None:
            if p.channel not in channels:
                return None
            event = self._event(key, p.category, p.channel, True, source)
            if user_id:
                event["user_id"] = user_id
            return event

        done = self.preferences.clear(key, category, channel, event_for)
        self._announce(key, done.owed)
        return done.count

    def _event(self, key: str, category: str, channel: str, allowed: bool, source: str) -> dict[str, Any]:
        return {
            "recipient_key": key,
            "category": category,
            "channel": channel,
            "allowed": allowed,
            "source": source,
            "at": self.preferences.clock(),
        }

    def _announce(self, key: str, owed: dict[str, str]) -> None:
        """Publish what the recipient's changes owe, each forgotten in the same round trip as its
        publish (a change a crash left unannounced goes out with the next change of that recipient,
        or when the same change is made again: the bus runs a failed ``set_preference`` again)."""
        for field, raw in owed.items():

            def announced(pipe: Any, field: str = field, raw: str = raw) -> None:
                self.preferences.queue_announced(pipe, key, field, raw)

            self.bus.publish_with(announced, PREFERENCE_CHANGED, json.loads(raw))

    def handle(self, attributes: dict[str, Any]) -> None:
        """The bus handler for ``set_preference`` from apps: a bad event is rejected with its reason."""
        try:
            change = change_from_event(attributes)
            self.apply(change)
        except PreferenceRefused as exc:
            raise Reject(f"set_preference: {exc}") from None


def change_from_event(attributes: dict[str, Any]) -> Change:
    """A ``set_preference`` event: ``user_id`` or ``recipient`` (address, number or token), ``category``,
    ``channel``, ``allowed`` (true/false), optional ``source``."""
    fields = {k: v for k, v in attributes.items() if not k.startswith("bus_")}
    unknown = sorted(set(fields) - {"user_id", "recipient", "category", "channel", "allowed", "source"})
    if unknown:
        raise PreferenceRefused(f"unknown field(s) {', '.join(unknown)}")
    channel = _channel(fields.get("channel"))
    user_id, recipient = fields.get("user_id"), fields.get("recipient")
    if user_id is not None and (not isinstance(user_id, str) or not 0 < len(user_id) <= 200):
        raise PreferenceRefused("user_id must be a string of 1 to 200 characters")
    if recipient is not None:
        if not isinstance(recipient, str):
            raise PreferenceRefused("recipient must be a string")
        try:
            recipient = check_recipient(channel, recipient)
        except InvalidNotification as exc:
            raise PreferenceRefused(str(exc)) from None
    allowed = fields.get("allowed")
    if not isinstance(allowed, bool):
        raise PreferenceRefused("allowed must be true or false")
    category = fields.get("category")
    if not isinstance(category, str):
        raise PreferenceRefused("category must be a category name")
    source = fields.get("source") or f"app on {attributes.get('bus_app_hostname') or 'an unknown host'}"
    if not isinstance(source, str) or len(source) > MAX_SOURCE:
        raise PreferenceRefused(f"source must be a string of at most {MAX_SOURCE} characters")
    key = recipient_key(user_id, recipient)
    return Change(key, category, channel, allowed, source, user_id)


def _channel(value: Any) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        names = ", ".join(c.value for c in Channel)
        raise PreferenceRefused(f"channel must be one of {names}") from None
