"""``switchboard``: run the worker, send test events, manage templates, inspect deliveries."""

from __future__ import annotations

from bus.cli import run_cli
from switchboard.cli import hooks, limits, preferences, records, running, sending, templates
from switchboard.cli.base import cli
from switchboard.errors import SettingsError, SwitchboardError, TemplateError
from switchboard.events import InvalidNotification
from switchboard.preferences import PreferenceRefused

__all__ = ["cli", "hooks", "limits", "main", "preferences", "records", "running", "sending", "templates"]


def main(argv: list[str] | None = None) -> None:
    """The ``switchboard`` entry point."""
    run_cli(
        cli,
        "switchboard",
        argv,
        bad_input=(SettingsError, InvalidNotification, TemplateError, PreferenceRefused),
        failures=(SwitchboardError,),
    )
