"""RenderedMessage: what a template turns into, ready for a provider."""

from __future__ import annotations

from dataclasses import dataclass

from .channels import Channel


@dataclass(frozen=True)
class RenderedMessage:
    """The rendered parts of one template in one locale.

    email: ``subject`` plus ``text`` and/or ``html``; sms: ``body``; push: ``title`` and
    ``body``. Parts a channel does not have are None. ``locale`` is the locale actually
    used after fallback (asking for ``fr_CA`` may give ``fr`` or the default).
    """

    channel: Channel
    name: str
    locale: str
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    title: str | None = None
    body: str | None = None
    version: str = ""
    """The template's version (a digest of its files) it was rendered from."""

    def parts(self) -> dict[str, str]:
        """The parts this message has, by field name, for printing and previews."""
        candidates = {
            "subject": self.subject,
            "title": self.title,
            "text": self.text,
            "html": self.html,
            "body": self.body,
        }
        return {key: value for key, value in candidates.items() if value is not None}

    def to_dict(self) -> dict[str, str]:
        """JSON-ready, for ``--json`` output and the dashboard."""
        return {"channel": self.channel.value, "name": self.name, "locale": self.locale, **self.parts()}
