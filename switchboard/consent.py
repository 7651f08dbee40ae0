"""The send path's side of preferences: whose choice a message depends on, and its unsubscribe link.

A message's category is its template's (template.toml) or, inline, the event's own. A category
people may opt out of is looked up in the recipient's preferences with the claim (one round
trip); one they may not (``security``), or a message without a category, is always sent. An
email in an opt-out-able category carries the one-click unsubscribe headers (RFC 8058), and its
template gets ``unsubscribe_url`` for the footer.
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
    """What a message's sending depends on: the recipient key, the category, whether it can be refused."""

    recipient_key: str
    category: str
    opt_out: bool


class ConsentCheck:
    """Finds a message's category and recipient key, queues the lookup, makes the unsubscribe link."""

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
        """Whose choice the message depends on (the ``to`` recipient's, or the publisher's ``user_id``)."""
        category = self.category_of(notification)
        if category is None:
            return None
        known = self.settings.categories.get(category)
        key = recipient_key(notification.user_id, notification.recipients()[0])
        return Consent(key, category, opt_out=known.opt_out if known is not None else True)

    def queue(self, pipe: Any, consent: Consent | None, channel: Channel) -> bool:
        """Queue the preference lookup on the claim's pipeline; False: nothing to look up (always sent)."""
        if consent is None or not consent.opt_out:
            return False
        self.preferences.queue_lookup(pipe, consent.recipient_key, consent.category, channel)
        return True

    @staticmethod
    def allowed(reply: Any) -> bool:
        return allows(reply)

    def unsubscribe_url(self, consent: Consent | None, channel: Channel) -> str | None:
        """The signed link for this recipient, category and channel (None: not opt-out-able, or no secret)."""
        if consent is None or not consent.opt_out or self.tokens is None or not self.settings.public_url:
            return None
        return self.tokens.url(self.settings.public_url, Unsubscribe(consent.recipient_key, consent.category, channel))

    def headers(self, url: str | None) -> dict[str, str]:
        """``List-Unsubscribe`` and ``List-Unsubscribe-Post`` for an email with a link."""
        return list_unsubscribe_headers(url, self.settings.unsubscribe.mailto) if url else {}
