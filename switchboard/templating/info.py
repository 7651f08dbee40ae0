"""TemplateInfo: everything the CLI and the dashboard show about one template."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from switchboard.digests import DigestSpec

from .channels import Channel
from .fields import FieldSpec
from .manifest import TemplateLimit
from .problems import Problem


@dataclass(frozen=True)
class TemplateInfo:
    """One ``templates/<channel>/<name>/`` folder as loaded, problems included.

    A template whose template.toml is broken is still listed (with empty fields and
    sample) so it never silently disappears.
    """

    channel: Channel
    name: str
    description: str
    default_locale: str
    locales: tuple[str, ...]  # default first, then the variants found on disk
    fields: Mapping[str, FieldSpec]
    sample: Mapping[str, object]
    files: tuple[str, ...]  # paths relative to the templates folder
    problems: tuple[Problem, ...] = ()
    category: str | None = None
    """One of the settings' categories; None: transactional (never held by quiet hours)."""
    recipient_limit: TemplateLimit | None = None
    """Counted on its own per recipient (e.g. an OTP); None: the channel's limit."""
    digest: DigestSpec | None = None
    """``[digest]``: events are collected for a window and sent as one message; None: each is sent."""
    version: str = ""
    """A digest of the template's files and the layouts and partials it can use: what a delivery
    record keeps, so a message can be traced to the exact text it was rendered from."""

    @property
    def key(self) -> str:
        """``email/welcome``: how problems and the CLI name this template."""
        return f"{self.channel.value}/{self.name}"

    @property
    def ok(self) -> bool:
        """True when the template loaded and rendered its sample in every locale."""
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, for ``--json`` output and the dashboard."""
        return {
            "channel": self.channel.value,
            "name": self.name,
            "description": self.description,
            "default_locale": self.default_locale,
            "locales": list(self.locales),
            "fields": {name: str(spec) for name, spec in self.fields.items()},
            "sample": dict(self.sample),
            "files": list(self.files),
            "problems": [str(problem) for problem in self.problems],
            "category": self.category,
            "recipient_limit": (
                {"count": self.recipient_limit.count, "window": self.recipient_limit.window}
                if self.recipient_limit
                else None
            ),
            "digest": (
                {"window": self.digest.window, "max_items": self.digest.max_items, "key": list(self.digest.key)}
                if self.digest
                else None
            ),
            "version": self.version,
        }
