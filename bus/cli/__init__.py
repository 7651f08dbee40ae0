"""``bus``: the command line. Thin: parse, call the library, print a table or JSON."""

from __future__ import annotations

from bus.cli import inspecting, observing, running, subscribing
from bus.cli.base import Env, cli, command_group, common, parse_attributes, parse_since, run_cli

__all__ = [
    "Env",
    "cli",
    "command_group",
    "common",
    "inspecting",
    "main",
    "observing",
    "parse_attributes",
    "parse_since",
    "run_cli",
    "running",
    "subscribing",
]


def main(argv: list[str] | None = None) -> None:
    """The ``bus`` entry point."""
    run_cli(cli, "bus", argv)
