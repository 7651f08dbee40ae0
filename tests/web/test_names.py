"""Issue 24, items 8-10: names cannot lie or break the page; /login shows nothing of the deployment.

The page widths themselves are measured in Chromium (tests/web/test_browser.py); here the
markup that makes them hold.
"""

from __future__ import annotations

import re

import pytest
import redis

from bus import Bus
from bus.web import WebSettings, create_app
from bus.web.rendering import STATIC
from tests.web.conftest import Client
from tests.web.helpers import failure, fill_queue, rider_job

RLO = "\u202e"
REVERSED_QUEUE = RLO + "eueuq"  # displays as "queue"
REVERSED_APP = RLO + "gnp.exe"  # displays as "exe.png"
HEBREW = "תור"
SHOWN_QUEUE = "[U+202E]eueuq"
SHOWN_APP = "[U+202E]gnp.exe"


@pytest.fixture
def hostile(r: redis.Redis) -> None:
    for queue, app in ((REVERSED_QUEUE, REVERSED_APP), (HEBREW, HEBREW)):
        fill_queue(r, queue, [rider_job(app, "s", "order_placed", queue)] * 2)
        r.sadd("resque:bus_apps", app)
        r.hset(f"resque:bus_app:{app}", "s", f'{{"queue_name":"{queue}","key":"s","class":"X","matcher":{{}}}}')
    r.rpush("resque:failed", failure(queue=REVERSED_QUEUE, app=REVERSED_APP))


@pytest.mark.usefixtures("hostile")
@pytest.mark.parametrize("path", ["/", "/queues", "/apps", "/failed", "/events", "/queues/%E2%80%AEeueuq"])
def test_no_bidi_control_from_a_name_reaches_a_page(client: Client, path: str) -> None:
    """Shown as its code point everywhere but in form values, which post the name back as it is."""
    page = client.page(path)
    assert page.status_code == 200 and RLO not in re.sub(r'value="[^"]*"', "", page.text)


@pytest.mark.usefixtures("hostile")
def test_names_are_isolated_and_show_their_controls(client: Client) -> None:
    overview = client.page("/").text
    assert f"<bdi>{SHOWN_QUEUE}</bdi>" in overview and f"<bdi>{HEBREW}</bdi>" in overview
    apps = client.page("/apps").text
    assert f"<bdi>{SHOWN_APP}</bdi>" in apps and f"<bdi>{HEBREW}</bdi>" in apps
    queue = client.page("/queues/%E2%80%AEeueuq").text
    assert f"<h1>Queue <bdi>{SHOWN_QUEUE}</bdi></h1>" in queue
    assert f"<title>Queue \u2068{SHOWN_QUEUE}\u2069 · bus</title>" in queue


@pytest.mark.usefixtures("hostile")
def test_sentences_are_built_from_isolated_names(client: Client) -> None:
    problems = client.page("/").text.split("Needs attention")[1].split("</ul>")[0]
    assert f"2 job(s) wait in \u2068{SHOWN_QUEUE}\u2069 and no live worker takes jobs from it." in problems
    assert f"2 job(s) wait in \u2068{HEBREW}\u2069 and no live worker" in problems
    asked = client.submit("/queues/%E2%80%AEeueuq/clear")
    assert f"Delete all 2 job(s) waiting in \u2068{SHOWN_QUEUE}\u2069." in asked.text and RLO not in asked.text
    done = client.submit("/queues/%E2%80%AEeueuq/clear", {"confirm": "yes"})
    assert f"Cleared \u2068{SHOWN_QUEUE}\u2069: removed 2 job(s)." in client.page(done.headers["location"]).text
    asked = client.submit("/apps/%E2%80%AEgnp.exe/unsubscribe")
    assert f"Remove every subscription of \u2068{SHOWN_APP}\u2069." in asked.text and RLO not in asked.text


def test_long_names_wrap_anywhere() -> None:
    css = (STATIC / "dashboard.css").read_text()
    assert "overflow-wrap: anywhere" in css and "unicode-bidi: isolate" in css


def test_login_shows_nothing_about_the_deployment(bus: Bus, redis_url: str) -> None:
    settings = WebSettings(token="tok-5a1f-not-for-pages-0123456789")
    with Client(create_app(bus, settings), base_url="http://localhost") as locked:
        shown = [locked.page("/login").text, locked.submit("/login", {"token": "wrong"}).text]
        port = redis_url.rsplit(":", 1)[1].split("/")[0]
        for page in shown:
            assert 'class="where"' not in page and port not in page and "resque" not in page
        locked.submit("/login", {"token": "tok-5a1f-not-for-pages-0123456789"})
        assert 'class="where"' in locked.page("/").text and port in locked.page("/").text


def test_an_open_dashboard_still_says_where_it_is(client: Client, redis_url: str) -> None:
    assert redis_url.rsplit(":", 1)[1].split("/")[0] in client.page("/login").text
