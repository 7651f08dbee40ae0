"""CSRF on every POST, authentication, host checks, headers, escaping, and no secrets on pages."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from bus import Bus
from bus.web import WebSettings, create_app
from bus.web.csrf import COOKIE, CsrfMiddleware
from bus.web.signing import Signer
from tests.web.conftest import Client
from tests.web.helpers import XSS, declare_shop, delayed_job, failure, fill_queue, rider_job, schedule

POSTS = [
    "/apps/who-gets",
    "/apps/shop/unsubscribe",
    "/queues/shop_default/remove",
    "/queues/shop_default/clear",
    "/failed/retry",
    "/failed/remove",
    "/delayed/remove",
    "/delayed/remove-time",
    "/logout",
]


@pytest.mark.parametrize("path", POSTS)
def test_every_post_without_the_csrf_token_is_refused(client: Client, r: redis.Redis, path: str) -> None:
    fill_queue(r, "shop_default", [rider_job("shop", "s", "e", "shop_default")])
    client.csrf()  # the cookie is there, the token is not sent
    response = client.post(path, data={"confirm": "yes", "scope": "matching"}, follow_redirects=False)
    assert response.status_code == 403
    assert r.llen("resque:queue:shop_default") == 1


def test_a_token_from_another_cookie_is_refused(client: Client, bus: Bus) -> None:
    token = client.csrf()
    client.cookies.set(COOKIE, "0" * 32)
    response = client.post("/apps/who-gets", data={"csrf_token": token, "event_type": "x"})
    assert response.status_code == 403


def test_a_post_with_the_token_in_a_header_is_accepted(client: Client) -> None:
    token = client.csrf()
    response = client.post("/apps/who-gets", data={"event_type": "x"}, headers={"x-csrf-token": token})
    assert response.status_code == 200


def test_a_huge_body_is_refused_before_parsing(client: Client) -> None:
    client.csrf()
    response = client.post("/apps/who-gets", content=b"x" * (1024 * 1024 + 1), headers={"content-type": "text/plain"})
    assert response.status_code == 413


@pytest.mark.parametrize("declared", [b"\xb2", b"9" * 40, b"-1", b""])
def test_a_hostile_content_length_is_read_strictly_not_a_crash(declared: bytes) -> None:
    """``'\xb2'.isdigit()`` is true and ``int('\xb2')`` raises: the declared length goes through the
    strict parser, and the body's real size is still bounded while it is read."""
    sent: list[Message] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("reached")(scope, receive, send)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"x" * 20, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", declared)]}
    asyncio.run(CsrfMiddleware(endpoint, Signer(), max_body=10)(scope, receive, send))
    assert sent[0]["status"] == 413


def test_only_loopback_host_headers_are_served_on_a_loopback_bind(app: Starlette) -> None:
    with Client(app, base_url="http://evil.example") as evil:
        assert evil.get("/healthz").status_code == 400
    for host in ("127.0.0.1", "localhost", "[::1]"):
        with Client(app, base_url=f"http://{host}:8484") as ok:
            assert ok.get("/healthz").status_code == 200


def test_pages_carry_security_headers(client: Client) -> None:
    response = client.page("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "HttpOnly" in response.headers["set-cookie"] and "SameSite=Strict" in response.headers["set-cookie"]


def test_templates_autoescape(app: Starlette) -> None:
    env = app.state.dashboard.templates.env
    assert env.autoescape is True


# --- authentication ---------------------------------------------------------------
SECRET_TOKEN = "tok-7c1e9d0f-not-for-pages"
SECRET_PASSWORD = "pw-4b2a88-not-for-pages"


@pytest.fixture
def locked(bus: Bus) -> Client:
    settings = WebSettings(token=SECRET_TOKEN, username="ops", password=SECRET_PASSWORD)
    return Client(create_app(bus, settings), base_url="http://localhost")


def test_with_auth_configured_pages_redirect_to_sign_in(locked: Client) -> None:
    response = locked.get("/failed?queue=x", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/failed%3Fqueue%3Dx"
    assert locked.get("/api/overview").status_code == 401
    assert locked.get("/metrics").headers["www-authenticate"].startswith("Basic")
    assert locked.get("/healthz").status_code == 200
    assert locked.get("/static/dashboard.css").status_code == 200
    assert locked.get("/healthzz").status_code == 401 and locked.get("/login/../apps").status_code == 401


def test_signing_in_with_the_token_opens_the_pages(locked: Client) -> None:
    wrong = locked.submit("/login", {"token": "nope", "next": "/failed"})
    assert wrong.status_code == 401
    response = locked.submit("/login", {"token": SECRET_TOKEN, "next": "/failed"})
    assert response.status_code == 303 and response.headers["location"] == "/failed"
    assert locked.page("/failed").status_code == 200
    assert locked.submit("/logout").status_code == 303
    assert locked.get("/api/overview").status_code == 401


def test_signing_in_with_user_and_password(locked: Client) -> None:
    assert locked.submit("/login", {"username": "ops", "password": "wrong"}).status_code == 401
    response = locked.submit("/login", {"username": "ops", "password": SECRET_PASSWORD, "next": "//evil.example/"})
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert locked.get("/api/overview").status_code == 200


def test_scripts_authenticate_with_bearer_or_basic(locked: Client) -> None:
    assert locked.get("/metrics", headers={"authorization": f"Bearer {SECRET_TOKEN}"}).status_code == 200
    assert locked.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
    basic = base64.b64encode(f"ops:{SECRET_PASSWORD}".encode()).decode()
    assert locked.get("/metrics", headers={"authorization": f"Basic {basic}"}).status_code == 200
    assert locked.get("/metrics", headers={"authorization": "Basic !!!"}).status_code == 401


def test_a_forged_session_cookie_is_refused(locked: Client) -> None:
    locked.cookies.set("bus_session", "c2lnbmVkLWlu.0.deadbeef")
    assert locked.get("/api/overview").status_code == 401


SECRET_KEY = "sk-0d9c51e2-not-for-pages-0123456789abcdef"


def test_a_secret_key_keeps_sessions_across_processes_until_the_credentials_change(bus: Bus) -> None:
    settings = WebSettings(token=SECRET_TOKEN, secret_key=SECRET_KEY)
    first = Client(create_app(bus, settings), base_url="http://localhost")
    assert first.submit("/login", {"token": SECRET_TOKEN}).status_code == 303
    cookies = dict(first.cookies)

    def accepted(other: WebSettings) -> bool:
        client = Client(create_app(bus, other), base_url="http://localhost", cookies=cookies)
        return bool(client.get("/api/overview").status_code == 200)

    assert accepted(settings)  # a restart, or a second process behind the same address
    assert not accepted(WebSettings(token=SECRET_TOKEN))  # no key: each process makes its own
    assert not accepted(WebSettings(token=SECRET_TOKEN, secret_key=SECRET_KEY[::-1]))
    assert not accepted(WebSettings(token="a-new-token-0123456789abcdef", secret_key=SECRET_KEY))  # credentials changed
    # A form token from one process is good at the other.
    token = first.csrf()
    second = Client(create_app(bus, settings), base_url="http://localhost", cookies=dict(first.cookies))
    assert second.post("/apps/who-gets", data={"event_type": "x"}, headers={"x-csrf-token": token}).status_code == 200


def test_secrets_never_appear_on_any_page(r: redis.Redis, redis_url: str) -> None:
    port = redis_url.rsplit(":", 1)[1]
    url_password = "redis-pw-91f3-not-for-pages"
    # The test server has no password; Redis 6+ accepts any password for the nopass default user.
    b = Bus(f"redis://default:{url_password}@127.0.0.1:{port}")
    declare_shop(b, [])
    b.subscribe_all()
    fill_queue(r, "shop_default", [rider_job("shop", "order_placed", "order_placed", "shop_default", id=1)])
    r.rpush("resque:failed", failure())
    schedule(r, 2_000_000_000, delayed_job("later"))
    settings = WebSettings(token=SECRET_TOKEN, username="ops", password=SECRET_PASSWORD, secret_key=SECRET_KEY)
    with Client(create_app(b, settings), base_url="http://localhost") as c:
        assert c.submit("/login", {"token": SECRET_TOKEN}).status_code == 303
        ref = c.get("/api/overview").json()  # a JSON endpoint too
        assert ref["counters"]["pending"] == 1
        pages = ["/", "/apps", "/queues", "/queues/shop_default", "/failed", "/delayed", "/metrics", "/login"]
        pages += [f"/failed/entry/0:{'0' * 40}", "/delayed/2000000000", "/nowhere"]
        bodies = [c.page(p) for p in pages] + [c.get("/api/overview"), c.page("/?partial=1")]
        bodies.append(c.submit("/apps/shop/unsubscribe"))  # a confirmation page
        for response in bodies:
            text = response.text + json.dumps(dict(response.headers))
            for secret in (SECRET_TOKEN, SECRET_PASSWORD, SECRET_KEY, url_password):
                assert secret not in text, response.url
        assert "***@127.0.0.1" in c.page("/").text
    b.close()


# --- escaping -------------------------------------------------------------------------
def test_hostile_event_payloads_are_escaped_on_every_page(client: Client, r: redis.Redis, bus: Bus) -> None:
    job = rider_job("shop", XSS, XSS, "shop_default", **{XSS: XSS, "id": XSS})
    fill_queue(r, "shop_default", [job])
    r.rpush("resque:failed", failure(exc=RuntimeError(XSS), note=XSS))
    schedule(r, 2_000_000_000, delayed_job(XSS, body=XSS))
    hostile_sub = {"queue_name": "default", "key": XSS, "class": XSS, "matcher": {XSS: XSS}}
    r.hset("resque:bus_app:shop", XSS, json.dumps(hostile_sub))
    r.sadd("resque:bus_apps", "shop")
    pages = ["/", "/apps", "/queues", "/queues/shop_default", "/failed", "/delayed", "/delayed/2000000000"]
    entry = client.page("/failed").text.split("/failed/entry/")[1].split('"')[0]
    pages.append(f"/failed/entry/{entry}")
    for path in pages:
        html = client.page(path).text
        assert "<script>window.__xss" not in html, path
        assert "<img src=x" not in html, path
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html or path in ("/", "/queues"), path
    who = client.submit("/apps/who-gets", {"event_type": XSS, "event": json.dumps({XSS: XSS})})
    assert "<script>window.__xss" not in who.text and "&lt;script&gt;" in who.text


# --- other packages' routes are protected too ---------------------------------------
def test_csrf_and_auth_cover_routes_other_packages_add(bus: Bus) -> None:
    async def action(request: Request) -> Response:
        return PlainTextResponse("done")

    app = create_app(bus, WebSettings(token=SECRET_TOKEN), extra_routes=[Route("/extra/act", action, methods=["POST"])])
    with Client(app, base_url="http://localhost") as c:
        assert c.post("/extra/act").status_code == 401
        c.submit("/login", {"token": SECRET_TOKEN})
        assert c.post("/extra/act", data={}).status_code == 403
        assert c.submit("/extra/act").text == "done"


@pytest.mark.parametrize("path", POSTS)
def test_state_changing_routes_refuse_get(client: Client, path: str) -> None:
    response = client.page(path)
    assert response.status_code == 405 and "Not allowed" in response.text
