"""The switchboard's dashboard pages: templates with previews, deliveries, outbox, suppressions.

``create_switchboard_app(bus, web_settings, board_settings)`` is the bus dashboard with
these pages added; ``switchboard web`` serves it.
"""

from __future__ import annotations

from switchboard.web.app import create_switchboard_app
from switchboard.web.board import Board, board_of

__all__ = ["Board", "board_of", "create_switchboard_app"]
