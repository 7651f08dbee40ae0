"""What a security review of the dashboard asked for: URL secrets, CSRF per session, guessing
limits, hostile names in paths, headers on the error page."""

from __future__ import annotations

import base64
import re

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus import Bus
from bus.backend.connection import connect, parse_url, redact_url
from bus.errors import ConfigurationError
from bus.web import WebSettings, create_app
from bus.web.csrf import COOKIE
from bus.web.throttle import FailedSignIns
from tests.support.servers import RedisProcess
from tests.web.browser import serving
from tests.web.conftest import Client
from tests.web.helpers import declare_shop, failure, fill_queue, rider_job

TOKEN = "tok-5e0c2b7a-hardening-tests-only"


# --- secrets in the Redis URL ----------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw-one@h:1/0", "redis://***@h:1/0"),
        ("redis://u:pw-one@h:1/0", "redis://u:***@h:1/0"),
        ("redis://h:1/0?password=pw-one", "redis://h:1/0?password=***"),
        ("redis://h:1/0?socket_timeout=5&PassWord=pw-one", "redis://h:1/0?socket_timeout=5&PassWord=***"),
        ("redis+sentinel://h:1/mymaster?sentinel_password=pw-one&db=2", None),
        ("rediss://u@h:1/0?ssl_certfile=/x&client_secret=pw-one", None),
        ("redis://h:1/0", "redis://h:1/0"),
        ("redis://:pw-one?x@h:1/0", "redis://***@h:1/0"),  # not percent-encoded: ? / # in it
        ("redis://u:pw/one#x@h:1/0", "redis://u:***@h:1/0"),
        ("redis://h:1/0?p%61ssword=pw-one", "redis://h:1/0?p%61ssword=***"),
        ("redis://h:1/0?client_name=a@b", "redis://h:1/0?client_name=a@b"),
        ("redis://default:42/pw-one@h:6379/0", "redis://default:***@h:6379/0"),
        ("redis://u:1234#pw-one@h:6379/0", "redis://u:***@h:6379/0"),
        ("redis://u:1234?pw-one@h:6379/0", "redis://u:***@h:6379/0"),
        ("redis://u:a?b=pw-one@h:6379/0", "redis://u:***@h:6379/0"),
        ("redis+cluster://u:42/pw-one@h1:1,h2:2/", "redis+cluster://u:***@h1:1,h2:2/"),
        ("redis://:pw#one@h:1/0?client_name=a@b", "redis://***@h:1/0?client_name=a@b"),
        ("redis://:pw-one@[fe80::1%eth0]:1/0?x=a@b", "redis://***@[fe80::1%eth0]:1/0?x=a@b"),
        ("rediss://h:1/0?ssl_ca_certs=/etc/a@b.pem", "rediss://h:1/0?ssl_ca_certs=/etc/a@b.pem"),
        ("unix:///run/redis@main/x.sock?password=pw-one", "unix:///run/redis@main/x.sock?password=***"),
        ("unix://u:pw-one@/run/redis@main/x.sock", "unix://u:***@/run/redis@main/x.sock"),
    ],
)
def test_a_password_anywhere_in_the_url_is_hidden(url: str, shown: str | None) -> None:
    redacted = redact_url(url)
    assert "pw-one" not in redacted
    if shown is not None:
        assert redacted == shown


@pytest.mark.parametrize(
    "url",
    [
        "redis://:pw-one/two+three@127.0.0.1:6379/0",  # a base64 password, not percent-encoded
        "redis://default:pw-one?two@127.0.0.1:6379/0",
        "redis+cluster://:pw-one/two@127.0.0.1:1,127.0.0.1:2/",
        "redis+sentinel://:pw-one#two@127.0.0.1:1/mymaster",
    ],
)
def test_an_unparsable_url_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        connect(url)
    assert "pw-one" not in str(refused.value) and "two" not in str(refused.value)
    assert "percent-encode" in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "unix:///tmp/x.sock?db=1&client_name=a@b",
        "unix:///run/redis@main/x.sock",
        "redis:///0?client_name=a@b",
        "redis://h:1/0?client_name=a@b",
        "redis://us%40er:p%2Fw@h:1/0",
    ],
)
def test_valid_urls_with_an_at_sign_elsewhere_are_accepted(url: str) -> None:
    assert parse_url(url).kind == "single"


def test_a_multi_host_url_refuses_query_parameters() -> None:
    with pytest.raises(ConfigurationError, match="no query parameters") as refused:
        parse_url("redis+sentinel://127.0.0.1:1/mymaster?password=pw-one")
    assert "pw-one" not in str(refused.value)


def test_a_multi_host_url_decodes_its_credentials() -> None:
    topology = parse_url("redis+cluster://us%3Aer:p%40ss%2Fword@127.0.0.1:1/")
    assert (topology.username, topology.password) == ("us:er", "p@ss/word")


def test_the_header_and_the_redis_down_page_hide_a_query_password(redis_url: str) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    secret = "pw-in-query-6d2f"
    # The test server has no password; Redis 6+ accepts any password for the nopass default user.
    up = Bus(f"redis://127.0.0.1:{port}/0?password={secret}")
    down = Bus(f"redis://127.0.0.1:1/0?password={secret}&socket_connect_timeout=0.2")
    try:
        with Client(create_app(up), base_url="http://localhost") as c:
            page = c.page("/").text
            assert "password=***" in page and secret not in page
        with Client(create_app(down), base_url="http://localhost") as c:
            response = c.page("/queues")
            assert response.status_code == 503 and "password=***" in response.text and secret not in response.text
    finally:
        up.close()
        down.close()


# --- CSRF tokens belong to one session ------------------------------------------------
def test_a_form_token_taken_before_sign_in_is_refused_after_it(bus: Bus) -> None:
    app = create_app(bus, WebSettings(token=TOKEN))
    with Client(app, base_url="http://localhost") as attacker:
        nonce_token = attacker.csrf()  # /login is open: anyone gets a cookie and its token
        planted = attacker.cookies[COOKIE]
    with Client(app, base_url="http://localhost") as victim:
        assert victim.submit("/login", {"token": TOKEN}).status_code == 303
        victim.cookies.set(COOKIE, planted)  # a cookie planted by a sibling site
        forged = victim.post("/apps/who-gets", data={"event_type": "x", "csrf_token": nonce_token})
        assert forged.status_code == 403
        own = victim.post("/apps/who-gets", data={"event_type": "x"}, headers={"x-csrf-token": victim.csrf()})
        assert own.status_code == 200


def test_non_ascii_tokens_and_cookies_are_refused_not_a_crash(bus: Bus) -> None:
    app = create_app(bus, WebSettings(token=TOKEN))
    with Client(app, base_url="http://localhost", raise_server_exceptions=False) as c:
        c.get("/login")
        assert c.post("/login", data={"token": TOKEN, "csrf_token": "\u00e9"}).status_code == 403
        assert c.post("/login", data={"token": TOKEN}, headers={"x-csrf-token": "\u00e9".encode()}).status_code == 403
        c.cookies.clear()
        cookie = "bus_session=YQ.0.\u00e9".encode()
        refused = c.get("/queues", headers={"accept": "text/html", "cookie": cookie}, follow_redirects=False)
        assert refused.status_code == 303


def test_cookies_over_https_are_secure(bus: Bus, r: redis.Redis) -> None:
    fill_queue(r, "shop_default", [rider_job("shop", "s", "e", "shop_default")])
    app = create_app(bus, WebSettings(token=TOKEN))
    with Client(app, base_url="https://localhost") as c:
        responses = [c.page("/login"), c.submit("/login", {"token": TOKEN})]
        responses.append(c.submit("/queues/shop_default/clear", {"confirm": "yes"}))
    cookies = [cookie for response in responses for cookie in response.headers.get_list("set-cookie")]
    names = {cookie.split("=", 1)[0] for cookie in cookies}
    assert {"bus_session", COOKIE, "bus_flash"} <= names
    assert all("; secure" in cookie.lower() and "httponly" in cookie.lower() for cookie in cookies)


def test_two_sign_ins_get_different_sessions(bus: Bus) -> None:
    app = create_app(bus, WebSettings(token=TOKEN))
    sessions = []
    for _ in range(2):
        with Client(app, base_url="http://localhost") as c:
            assert c.submit("/login", {"token": TOKEN}).status_code == 303
            sessions.append(c.cookies["bus_session"])
    assert sessions[0] != sessions[1]


# --- sessions end when signed out ---------------------------------------------------------
def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(bus: Bus, r: redis.Redis) -> None:
    app = create_app(bus, WebSettings(token=TOKEN))
    with Client(app, base_url="http://localhost") as mine, Client(app, base_url="http://localhost") as copy:
        assert mine.submit("/login", {"token": TOKEN}).status_code == 303
        (session,) = r.keys("resque:bus:web:session:*")
        assert 0 < r.ttl(session) <= 12 * 3600
        copy.cookies.set("bus_session", mine.cookies["bus_session"])
        assert copy.get("/api/overview").status_code == 200
        assert mine.submit("/logout").status_code == 303
        assert r.keys("resque:bus:web:session:*") == []
        assert copy.get("/api/overview").status_code == 401  # a stolen cookie is dead too


def test_while_redis_is_down_a_session_is_neither_trusted_nor_dropped(own_server: RedisProcess) -> None:
    b = Bus(f"{own_server.url}?socket_connect_timeout=0.2&socket_timeout=1")
    app = create_app(b, WebSettings(token=TOKEN))
    with Client(app, base_url="http://localhost") as mine, Client(app, base_url="http://localhost") as copy:
        assert mine.submit("/login", {"token": TOKEN}).status_code == 303
        copy.cookies.set("bus_session", mine.cookies["bus_session"])
        own_server.kill()
        assert mine.page("/queues").status_code == 503  # not a sign-in page that cannot work
        assert mine.page("/switchboard/templates").status_code == 503  # nor any page without Redis
        signed_out = mine.submit("/logout")  # the session stays in Redis: say so
        assert signed_out.status_code == 303 and "bus_session" not in mine.cookies
        assert "Signed out in this browser only" in mine.page("/login").text
        refused = mine.submit("/login", {"token": TOKEN})
        assert refused.status_code == 503 and "Redis is unreachable" in refused.text
        own_server.start()
        assert copy.get("/api/overview").status_code == 200
        assert copy.submit("/logout").status_code == 303
        assert copy.get("/api/overview").status_code == 401
    b.close()


def test_a_dead_session_shows_no_sign_out_and_signing_out_still_clears_it(bus: Bus, r: redis.Redis) -> None:
    app = create_app(bus, WebSettings(token=TOKEN))
    with Client(app, base_url="http://localhost") as c:
        assert c.submit("/login", {"token": TOKEN}).status_code == 303
        assert "Sign out" in c.page("/queues").text
        r.flushall()  # the session ended elsewhere
        assert "Sign out" not in c.page("/login").text
        assert c.submit("/logout").status_code == 303 and "bus_session" not in c.cookies


def test_signing_in_again_ends_the_previous_session(bus: Bus, r: redis.Redis) -> None:
    app = create_app(bus, WebSettings(token=TOKEN))
    with Client(app, base_url="http://localhost") as c:
        c.submit("/login", {"token": TOKEN})
        first = r.keys("resque:bus:web:session:*")
        c.submit("/login", {"token": TOKEN})
        second = r.keys("resque:bus:web:session:*")
    assert len(first) == len(second) == 1 and first != second


# --- guessing is throttled -------------------------------------------------------------
def test_wrong_bearer_tokens_are_throttled_per_client(bus: Bus) -> None:
    app = create_app(bus, WebSettings(token=TOKEN))
    with Client(app, base_url="http://localhost") as c:
        codes = [c.get("/metrics", headers={"authorization": f"Bearer guess-{i}"}).status_code for i in range(12)]
        assert codes[:10] == [401] * 10
        assert codes[10:] == [429, 429]
        limited = c.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        basic = base64.b64encode(b"ops:guess").decode()
        assert c.get("/metrics", headers={"authorization": f"Basic {basic}"}).status_code == 429
        assert c.submit("/login", {"token": TOKEN}).status_code == 429  # the form shares the count
    with Client(app, base_url="http://localhost", client=("10.0.0.9", 5000)) as other:
        assert other.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("trusted", [(), ("127.0.0.1",)])
def test_a_forwarded_for_header_counts_only_from_a_trusted_proxy(bus: Bus, trusted: tuple[str, ...]) -> None:
    settings = WebSettings(token=TOKEN, trusted_proxies=trusted)
    with serving(create_app(bus, settings), settings) as url, httpx.Client(base_url=url) as c:
        codes = [
            c.get(
                "/metrics", headers={"authorization": f"Bearer guess-{i}", "x-forwarded-for": f"203.0.113.{i}"}
            ).status_code
            for i in range(11)
        ]
    # Untrusted, the header is ignored: one address, throttled. From a trusted proxy each
    # forwarded client has its own count.
    assert codes == ([401] * 11 if trusted else [401] * 10 + [429])


def test_wrong_sign_ins_on_the_form_are_throttled(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bus.web.routes.login.FAILED_SIGN_IN_DELAY", 0)
    app = create_app(bus, WebSettings(token=TOKEN))
    with Client(app, base_url="http://localhost") as c:
        codes = [c.submit("/login", {"token": f"guess-{i}"}).status_code for i in range(11)]
        assert codes == [401] * 10 + [429]
        assert "Too many" in c.submit("/login", {"token": TOKEN}).text


def test_misses_age_out_of_the_window_and_quiet_clients_are_forgotten() -> None:
    now = [1000.0]
    sign_ins = FailedSignIns(limit=2, window=60, clock=lambda: now[0], clients_tracked=2)
    sign_ins.failed("a")
    now[0] += 30
    sign_ins.failed("a")
    assert sign_ins.retry_after("a") == 30 and sign_ins.retry_after("b") == 0
    now[0] += 30  # the first miss ages out
    assert sign_ins.retry_after("a") == 0
    sign_ins.failed("a")
    assert sign_ins.retry_after("a") == 30
    sign_ins.failed("b")
    sign_ins.failed("c")  # three clients, two tracked: "a" was quiet longest
    sign_ins.failed("b")
    assert sign_ins.retry_after("a") == 0 and sign_ins.retry_after("b") == 60


# --- hostile names in paths ------------------------------------------------------------
SLASHED = "team/billing"
ENCODED = "shop_defaul%74"  # would act on shop_default if sent unencoded


def test_queue_and_app_names_with_slashes_and_percents_round_trip(r: redis.Redis, bus: Bus) -> None:
    # Through uvicorn: Starlette's TestClient decodes a path twice, which a real server does not.
    fill_queue(r, SLASHED, [rider_job("a/b", "s", "e", SLASHED)])
    fill_queue(r, ENCODED, [rider_job("shop", "s", "e", ENCODED)])
    fill_queue(r, "shop_default", [rider_job("shop", "s", "e", "shop_default")])
    r.sadd("resque:bus_apps", "a/b", "shop_ap%70")
    r.hset("resque:bus_app:a/b", "s", '{"queue_name":"team/billing","key":"s","class":"X","matcher":{}}')
    r.hset("resque:bus_app:shop_ap%70", "s", '{"queue_name":"q","key":"s","class":"X","matcher":{}}')
    declare_shop(bus, [])
    bus.subscribe_all()
    r.rpush("resque:failed", failure(queue=SLASHED, app="a/b"))
    with serving(create_app(bus)) as url, httpx.Client(base_url=url, headers={"accept": "text/html"}) as c:

        def submit(path: str) -> int:
            """Post without confirming, then confirm on the page the server answers with."""
            token = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', c.get("/login").text)
            assert token
            asked = c.post(path, data={"csrf_token": token.group(1)})
            assert asked.status_code == 200 and "alertdialog" in asked.text
            assert f'action="{path}"' in asked.text  # still this name's path, not the decoded one
            return c.post(path, data={"confirm": "yes", "csrf_token": token.group(1)}).status_code

        for path in ("/", "/queues", "/apps", "/failed"):
            assert c.get(path).status_code == 200, path
        queues = c.get("/queues").text
        assert 'href="/queues/team%2Fbilling"' in queues and 'href="/queues/shop_defaul%2574"' in queues
        page = c.get("/queues/team%2Fbilling")
        assert page.status_code == 200 and "Queue <bdi>team/billing</bdi>" in page.text
        assert submit("/queues/shop_defaul%2574/clear") == 303
        assert r.llen(f"resque:queue:{ENCODED}") == 0 and r.llen("resque:queue:shop_default") == 1
        assert submit("/queues/team%2Fbilling/clear") == 303 and r.llen(f"resque:queue:{SLASHED}") == 0
        assert 'action="/apps/shop_ap%2570/unsubscribe"' in c.get("/apps").text
        assert submit("/apps/shop_ap%2570/unsubscribe") == 303
        assert r.sismember("resque:bus_apps", "shop") and not r.sismember("resque:bus_apps", "shop_ap%70")
        assert submit("/apps/a%2Fb/unsubscribe") == 303 and not r.sismember("resque:bus_apps", "a/b")
        entry = c.get("/failed").text.split("/failed/entry/")[1].split('"')[0]
        assert c.get(f"/failed/entry/{entry}").status_code == 200


# --- the error page ---------------------------------------------------------------------
def test_an_unexpected_error_page_carries_the_security_headers(bus: Bus) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug")

    app: Starlette = create_app(bus, extra_routes=[Route("/broken", broken)])
    with Client(app, base_url="http://localhost", raise_server_exceptions=False) as c:
        response = c.page("/broken")
    assert response.status_code == 500
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"
    assert "a bug" not in response.text
