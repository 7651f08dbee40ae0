"""The send path's side of preferences: whose choice a message depends on, and its unsubscribe link.

A message's category is its template's (template.toml) or, inline, the event's own. A category
people may opt out of is looked up in each ``to`` recipient's preferences with the claim (one round
trip; one lookup for them all when the publisher gave a ``user_id``): the ones who opted out are
left out of the message, and it is not sent when that is everyone. One they may not opt out of
(``security``), or a message without a category, is always sent. An email in an opt-out-able
category for one person carries the one-click unsubscribe headers (RFC 8058), and its template
gets ``unsubscribe_url`` for the footer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchboard.channels import Channel
from switchboard.errors import TemplateError
from switchboard.events import Notification
from switchboard.preferences import Preferences, allows, recipient_key
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateStore
from switchboard.unsubscribe import Unsubscribe, UnsubscribeTokens, list_unsubscribe_headers


@dataclass(frozen=True, slots=True)
class Consent:
    """What a message's sending depends on: whose choices (each ``to`` recipient's key, all the
    publisher's ``user_id`` when it gave one), the category, whether it can be refused."""

    keys: dict[str, str]
    """``to`` recipient -> recipient key (those who opted out are taken out once looked up)."""
    category: str
    opt_out: bool
    refused: tuple[str, ...] = ()
    """The ``to`` recipients who opted out of the category (left out of the message)."""

    @property
    def everyone_refused(self) -> bool:
        return bool(self.refused) and not self.keys


class ConsentCheck:
    """Finds a message's category and recipient keys, queues the lookups, makes the unsubscribe link."""

    def __init__(self, preferences: Preferences, settings: SwitchboardSettings, templates: TemplateStore) -> None:
        self.preferences = preferences
        self.settings = settings
        self.templates = templates
        secret = settings.unsubscribe.secret
        self.tokens = (
            UnsubscribeTokens(secret.reveal(), max_age=settings.unsubscribe.max_age_days * 86400) if secret else None
        )

    def category_of(self, notification: Notification) -> str | None:
        """The template's category, or the inline event's; None: the message has none."""
        if not notification.template:
            return notification.category
        try:
            return self.templates.get(notification.CHANNEL, notification.template).category
        except TemplateError:
            return None  # rendering says what is wrong with it

    def of(self, notification: Notification) -> Consent | None:
        """Whose choices the message depends on: each ``to`` recipient's, or the publisher's ``user_id``."""
        category = self.category_of(notification)
        if category is None:
            return None
        known = self.settings.categories.get(category)
        keys = {r: recipient_key(notification.user_id, r) for r in notification.recipients()}
        return Consent(keys, category, opt_out=known.opt_out if known is not None else True)

    def queue(self, pipe: Any, consent: Consent | None, channel: Channel) -> int:
        """Queue the preference lookups on the claim's pipeline (one per distinct key); how many
        replies they add at its end (0: nothing to look up, always sent)."""
        if consent is None or not consent.opt_out:
            return 0
        keys = _distinct(consent)
        for key in keys:
            self.preferences.queue_lookup(pipe, key, consent.category, channel)
        return len(keys)

    @staticmethod
    def answered(consent: Consent | None, replies: list[Any]) -> Consent | None:
        """The consent once looked up (``replies`` of :meth:`queue`): the opted-out recipients moved
        from ``keys`` to ``refused``."""
        if consent is None or not replies:
            return consent
        no = {key for key, reply in zip(_distinct(consent), replies, strict=True) if not allows(reply)}
        kept = {r: k for r, k in consent.keys.items() if k not in no}
        refused = tuple(r for r, k in consent.keys.items() if k in no)
        return Consent(kept, consent.category, consent.opt_out, refused)

    def unsubscribe_url(self, consent: Consent | None, channel: Channel) -> str | None:
        """The signed link for this recipient, category and channel (None: not opt-out-able, no
        secret, or several people's choices: one link cannot be everyone's)."""
        if consent is None or not consent.opt_out or self.tokens is None or not self.settings.public_url:
            return None
        keys = _distinct(consent)
        if len(keys) != 1:
            return None
        return self.tokens.url(self.settings.public_url, Unsubscribe(keys[0], consent.category, channel))

    def headers(self, url: str | None) -> dict[str, str]:
        """``List-Unsubscribe`` and ``List-Unsubscribe-Post`` for an email with a link."""
        return list_unsubscribe_headers(url, self.settings.unsubscribe.mailto) if url else {}


def _distinct(consent: Consent) -> list[str]:
    return list(dict.fromkeys(consent.keys.values()))
