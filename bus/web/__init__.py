"""The bus web dashboard: ``create_app(bus, settings)``; ``bus web`` serves it.

Other packages add pages with ``create_app(..., extra_routes=, nav=, template_dirs=)``;
their handlers get the bus and the layout from :func:`dashboard_of`.
"""

from __future__ import annotations

from bus.web.app import create_app
from bus.web.dashboard import Dashboard, NavItem, dashboard_of
from bus.web.settings import WebSettings, check_bind, load_web_settings

__all__ = ["Dashboard", "NavItem", "WebSettings", "check_bind", "create_app", "dashboard_of", "load_web_settings"]
