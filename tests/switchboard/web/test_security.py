"""Security of the switchboard's pages: CSRF, methods, authentication, headers, and no secrets anywhere."""

from __future__ import annotations

import json

import httpx
import pytest
import redis

from bus import Bus
from bus.web import WebSettings
from switchboard.providers import EmailMessage
from switchboard.settings import SwitchboardSettings
from switchboard.web import create_switchboard_app
from switchboard.web.frames import FRAME_POLICY
from tests.switchboard.web.conftest import SECRETS
from tests.switchboard.web.helpers import WELCOME, record, send_to_outbox
from tests.switchboard.web.test_suppressions import suppress
from tests.web.conftest import Client

POSTS = [
    "/switchboard/templates/email/welcome",
    "/switchboard/deliveries/search",
    "/switchboard/outbox/clear",
    "/switchboard/suppressions/add",
    "/switchboard/suppressions/remove",
    "/switchboard/preferences/find",
    "/switchboard/preferences/change",
    "/switchboard/providers/reset",
]
WEB_TOKEN = "web-token-4b7e-not-for-pages"


@pytest.mark.parametrize("path", POSTS)
def test_every_post_without_the_csrf_token_is_refused(client: Client, path: str) -> None:
    client.csrf()
    assert client.post(path, data={"confirm": "yes", "channel": "email", "recipient": "x@y.z"}).status_code == 403
    assert client.post(path, data={"csrf_token": "forged", "confirm": "yes"}).status_code == 403


@pytest.mark.parametrize("path", POSTS[1:])
def test_state_changing_routes_refuse_get(client: Client, path: str) -> None:
    response = client.page(path)
    assert response.status_code == 405 and "Not allowed" in response.text


def test_pages_keep_the_dashboard_policy_and_only_frames_get_theirs(client: Client, bus: Bus) -> None:
    send_to_outbox(EmailMessage(to=["a@example.com"], subject="s", html="<p>h</p>"), bus)
    for path in ("/switchboard", "/switchboard/templates", "/switchboard/templates/email/welcome"):
        headers = client.page(path).headers
        assert headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'")
        assert "unsafe-inline" not in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
    for path in ("/switchboard/frames/templates/email/welcome/en", "/switchboard/frames/previews/x"):
        headers = client.page(path).headers
        assert headers.get_list("content-security-policy") == [FRAME_POLICY]
        assert headers.get_list("x-frame-options") == ["SAMEORIGIN"]


def test_with_auth_configured_every_switchboard_route_needs_it(bus: Bus, board_settings: SwitchboardSettings) -> None:
    app = create_switchboard_app(bus, WebSettings(token=WEB_TOKEN), board_settings)
    with Client(app, base_url="http://localhost") as c:
        page = c.page("/switchboard/templates/email/welcome", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
        for path in (
            "/switchboard/frames/templates/email/welcome/en",
            "/metrics",
            "/switchboard/static/switchboard.css",
        ):
            assert c.get(path).status_code == 401, path
        assert c.get("/metrics", headers={"authorization": f"Bearer {WEB_TOKEN}"}).status_code == 200
        assert c.submit("/login", {"token": WEB_TOKEN}).status_code == 303
        assert c.page("/switchboard/templates/email/welcome").status_code == 200


def test_secrets_never_appear_on_any_page(bus: Bus, board_settings: SwitchboardSettings, r: redis.Redis) -> None:
    assert board_settings.sendgrid.configured and board_settings.twilio.configured  # really configured
    record(bus, "r1", status="failed", error="401 Unauthorized from the provider")
    digest = suppress(bus, "sms", "+14155550123", "invalid number")
    outbox_id = send_to_outbox(EmailMessage(to=["a@example.com"], subject="s", html="<p>h</p>"), bus)
    app = create_switchboard_app(bus, WebSettings(token=WEB_TOKEN), board_settings)
    with Client(app, base_url="http://localhost") as c:
        assert c.submit("/login", {"token": WEB_TOKEN}).status_code == 303
        pages = ["/switchboard", "/switchboard/templates", "/switchboard/templates/email/welcome"]
        pages += ["/switchboard/templates/sms/password_reset", "/switchboard/deliveries", "/switchboard/outbox"]
        pages += ["/switchboard/suppressions", "/metrics", "/switchboard/deliveries/record?id=email:r1"]
        pages += ["/switchboard/providers"]
        pages += ["/switchboard/frames/templates/email/welcome/fr", f"/switchboard/frames/outbox/{outbox_id}"]
        pages += ["/switchboard/templates/email/nope", "/switchboard/outbox?partial=1", "/", "/healthz"]
        responses: list[httpx.Response] = [c.page(p) for p in pages]
        responses += [
            c.submit("/switchboard/templates/email/welcome", {"data": json.dumps(WELCOME)}),
            c.submit("/switchboard/templates/email/welcome", {"data": "{broken"}),
            c.submit("/switchboard/outbox/clear"),
            c.submit("/switchboard/suppressions/remove", {"channel": "sms", "digest": digest}),
            c.submit("/switchboard/providers/reset", {"provider": "twilio"}),
            c.submit("/switchboard/deliveries/search", {"to": "ada@example.com"}),
        ]
        overview = responses[0].text
        assert "sendgrid" in overview and "twilio" in overview and "API key configured" in overview
        for response in responses:
            assert response.status_code < 500, response.url
            text = response.text + json.dumps(dict(response.headers))
            for secret in (*SECRETS, WEB_TOKEN):
                assert secret not in text, (response.url, secret)
