"""Serving the dashboard with the switchboard's pages (what ``switchboard web`` runs)."""

from __future__ import annotations

import logging

from bus import Bus
from bus.web import WebSettings, check_bind
from bus.web.serving import serve_app
from switchboard.settings import SwitchboardSettings

log = logging.getLogger("switchboard.web")


def serve(bus: Bus, web_settings: WebSettings, board_settings: SwitchboardSettings) -> None:
    """Run until interrupted; refuses a non-loopback bind without authentication."""
    check_bind(web_settings)
    from switchboard.web.app import create_switchboard_app

    app = create_switchboard_app(bus, web_settings, board_settings)
    log.warning(
        "dashboard on http://%s:%d/ (switchboard pages under /switchboard)", web_settings.host, web_settings.port
    )
    serve_app(app, web_settings)
