"""Another package adds pages, nav entries and templates to the same dashboard."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus import Bus
from bus.web import NavItem, WebSettings, create_app, dashboard_of
from tests.web.conftest import Client


def ext_page(request: Request) -> Response:
    dash = dashboard_of(request)
    depth = dash.redis.llen(dash.bus.keys.queue("switchboard_default"))
    return dash.render(request, "ext_page.html", {"title": "Ext", "message": f"<b>{depth} queued</b>"})


async def ext_action(request: Request) -> Response:
    dash = dashboard_of(request)
    return dash.redirect(request, str(request.url_for("ext_page").path), flash="Extension did it.")


def test_a_package_adds_a_page_a_nav_entry_and_templates(bus: Bus) -> None:
    app = create_app(
        bus,
        WebSettings(),
        extra_routes=[
            Route("/switchboard", ext_page, name="ext_page"),
            Route("/switchboard/act", ext_action, methods=["POST"], name="ext_action"),
        ],
        nav=[NavItem("Switchboard", "/switchboard")],
        template_dirs=[Path(__file__).parent / "ext_templates"],
    )
    with Client(app, base_url="http://localhost") as c:
        page = c.page("/switchboard").text
        assert "&lt;b&gt;0 queued&lt;/b&gt;" in page  # extension templates are escaped too
        assert '<a href="/switchboard" aria-current="page">Switchboard</a>' in page
        assert '<a href="/failed">Failed</a>' in page
        assert '<a href="/switchboard">Switchboard</a>' in c.page("/").text
        done = c.submit("/switchboard/act")
        assert done.status_code == 303
        assert "Extension did it." in c.page("/switchboard").text
