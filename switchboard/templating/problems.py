"""A Problem: one broken thing in the templates folder, printable as one line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """Where something is wrong and why, e.g. ``email/welcome [fr] body.fr.html: 'user' is undefined``.

    ``where`` is a template (``email/welcome``) or a shared file (``partials/button.html``);
    ``locale`` and ``file`` narrow it down when they apply. ``fatal`` problems (an unusable
    template.toml) stop every render of the template; the others concern some locale or data.
    """

    where: str
    message: str
    locale: str | None = None
    file: str | None = None
    fatal: bool = False

    def __str__(self) -> str:
        locale = f" [{self.locale}]" if self.locale else ""
        file = f" {self.file}" if self.file else ""
        return f"{self.where}{locale}{file}: {self.message}"

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready, for ``--json`` output and the dashboard."""
        return {"where": self.where, "locale": self.locale, "file": self.file, "message": self.message}

    def sort_key(self) -> tuple[str, str, str, str]:
        """Group a report by template, then locale, then file."""
        return (self.where, self.locale or "", self.file or "", self.message)
