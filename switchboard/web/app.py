"""``create_switchboard_app``: the bus dashboard plus the switchboard's pages.

The bus dashboard brings the layout, authentication, CSRF, security headers and error
pages; this adds the switchboard's routes, navigation and page templates, its lines on
``/metrics``, and the sandbox headers of the frames that show rendered messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette

from bus import Bus
from bus.web import NavItem, WebSettings, create_app
from switchboard.settings import SwitchboardSettings
from switchboard.web.board import Board
from switchboard.web.frames import FrameHeaders
from switchboard.web.metrics import extend_metrics
from switchboard.web.routes import switchboard_routes

TEMPLATES = Path(__file__).parent / "templates"
NAV = (
    NavItem("Switchboard", "/switchboard"),
    NavItem("Templates", "/switchboard/templates"),
    NavItem("Deliveries", "/switchboard/deliveries"),
    NavItem("Outbox", "/switchboard/outbox"),
    NavItem("Suppressions", "/switchboard/suppressions"),
    NavItem("Preferences", "/switchboard/preferences"),
    NavItem("Providers", "/switchboard/providers"),
)


def create_switchboard_app(
    bus: Bus,
    web_settings: WebSettings | None,
    board_settings: SwitchboardSettings,
    *,
    allowed_hosts: Sequence[str] | None = None,
    live_interval: float = 2.0,
) -> Starlette:
    """The dashboard for ``bus`` with the switchboard's pages under ``/switchboard``."""
    board = Board.build(bus, board_settings)
    app = create_app(
        bus,
        web_settings,
        extra_routes=switchboard_routes(),
        nav=NAV,
        template_dirs=[TEMPLATES],
        allowed_hosts=allowed_hosts,
        live_interval=live_interval,
    )
    app.state.switchboard = board
    extend_metrics(app)
    app.add_middleware(FrameHeaders)
    return app
