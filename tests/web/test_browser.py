"""End to end in a real headless Chromium: the pages live, a retry succeeds, an app is
unsubscribed, hostile payloads stay text. Screenshots go to test-output/screenshots/."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from bus import Bus, Retry
from bus.logger import LoggerApp, LoggerSettings
from bus.web import WebSettings, create_app
from tests.support.polling import wait_for
from tests.web.browser import SCREENSHOTS, chromium_binary, serving
from tests.web.helpers import XSS, declare_shop, delayed_job, failure, fill_queue, rider_job, running_worker, schedule

CHROMIUM = chromium_binary()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def base_url(redis_url: str) -> Iterator[str]:
    dashboard_bus = Bus(redis_url)
    with serving(create_app(dashboard_bus, WebSettings(), live_interval=0.5)) as url:
        yield url
    dashboard_bus.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)
    yield tab
    context.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def no_reload_marker(page: Page) -> None:
    page.evaluate("window.__sameDocument = 'yes'")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__sameDocument") == "yes"


def test_a_queue_fills_as_events_are_published(page: Page, base_url: str, bus: Bus) -> None:
    page.goto(f"{base_url}/queues")
    expect(page.locator("#live-status")).to_contain_text("live")
    no_reload_marker(page)
    bus.publish_many([("order_placed", {"id": i}) for i in range(3)])
    cell = page.locator('tr[data-queue="bus_incoming"] [data-field="pending"]')
    expect(cell).to_have_text("3")
    shot(page, "queues-filling")
    bus.publish_many([("order_placed", {"id": i}) for i in range(3, 12)])
    expect(cell).to_have_text("12")
    page.goto(f"{base_url}/")
    no_reload_marker(page)
    bus.publish("order_placed", {"id": 12})
    expect(page.locator("#count-pending")).to_have_text("13")
    assert_not_reloaded(page)
    page.click('a[href="/queues/bus_incoming"]')
    expect(page.locator("#queue-depth")).to_have_text("13")
    page.locator("#jobs-table details").first.click()
    expect(page.locator("#jobs-table pre").first).to_contain_text('"bus_event_type": "order_placed"')
    shot(page, "queue")


def test_retry_a_failed_job_and_watch_it_succeed(page: Page, base_url: str, bus: Bus, r: redis.Redis) -> None:
    calls: list[dict[str, Any]] = []
    broken = [True]
    declare_shop(bus, calls, fail=broken)
    bus.subscribe_all()
    with running_worker(bus, ["bus_incoming", "shop_default", "shop_critical"]):
        bus.publish("order_placed", {"id": 42})
        wait_for(lambda: r.llen("resque:failed") == 1)
        page.goto(f"{base_url}/failed")
        row = page.locator("#failed-table tbody tr").first
        expect(row).to_contain_text("payment service down for order 42")
        expect(row).to_contain_text("RuntimeError")
        shot(page, "failed")
        row.locator("a").first.click()
        expect(page.locator("h1")).to_contain_text("Failure #0")
        expect(page.locator("pre.backtrace")).to_contain_text("in `placed'")
        shot(page, "failure-detail")
        broken[0] = False
        page.click("button:text-is('Retry')")
        expect(page.locator(".flash")).to_have_text("Retried 1 failure(s).")
        expect(page.locator("#failed-table")).to_contain_text("No failures.")
        wait_for(lambda: calls)
        page.goto(f"{base_url}/")
        no_reload_marker(page)
        expect(page.locator("#count-failed-entries")).to_have_text("0")
        expect(page.locator(".all-well")).to_have_text("Nothing looks stuck.")
        expect(page.locator("#workers-table")).to_contain_text("alive")
        bus.publish("order_placed", {"id": 43})  # and the counters keep moving, live
        wait_for(lambda: len(calls) == 2)
        expect(page.locator("#count-processed")).to_have_text("5")
        assert_not_reloaded(page)
        shot(page, "overview")
    assert [c["id"] for c in calls] == [42, 43]


def test_unsubscribe_an_app(page: Page, base_url: str, bus: Bus, r: redis.Redis) -> None:
    declare_shop(bus, [])
    bus.subscribe_all()
    mail = bus.dispatch("mail")
    mail.subscribe("order_placed")(lambda attributes: None)
    bus.subscribe_all()
    page.goto(f"{base_url}/apps")
    expect(page.locator('section[data-app="shop"]')).to_contain_text("bus_event_type matches /^user_/")
    page.fill('textarea[name="event"]', '{"bus_event_type": "order_placed", "id": 1}')
    page.click("button:text-is('Run the matchers')")
    expect(page.locator("#who-gets-result")).to_contain_text("2 subscription(s) would get it")
    shot(page, "apps")
    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.locator('section[data-app="shop"] button:text-is("Unsubscribe…")').click()
    expect(page.locator(".flash")).to_have_text("Unsubscribed \u2068shop\u2069.")
    expect(page.locator('section[data-app="shop"]')).to_have_count(0)
    expect(page.locator('section[data-app="mail"]')).to_have_count(1)
    assert dialogs == ["Unsubscribe \u2068shop\u2069? New events stop reaching its queues."]
    assert r.smembers("resque:bus_apps") == {b"mail"}


def test_without_javascript_the_server_asks_to_confirm(browser: Browser, base_url: str, r: redis.Redis) -> None:
    fill_queue(r, "shop_default", [rider_job("shop", "s", "e", "shop_default")] * 4)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base_url}/queues/shop_default")
    page.click("button:text-is('Clear queue…')")
    expect(page.locator("h1")).to_have_text("Clear \u2068shop_default\u2069?")
    assert r.llen("resque:queue:shop_default") == 4
    shot(page, "confirm")
    page.click("button:text-is('Clear \u2068shop_default\u2069')")
    expect(page.locator(".flash")).to_have_text("Cleared \u2068shop_default\u2069: removed 4 job(s).")
    assert r.llen("resque:queue:shop_default") == 0
    context.close()


def test_hostile_payloads_are_shown_as_text(page: Page, base_url: str, bus: Bus, r: redis.Redis) -> None:
    alerts: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        alerts.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    bus.publish("order_placed", {"id": XSS, XSS: "key"})
    r.rpush("resque:failed", failure(exc=RuntimeError(XSS), note=XSS))
    due = int(time.time()) + 3600
    schedule(r, due, delayed_job(XSS, body=XSS))
    for path, selector in [
        ("/queues/bus_incoming", "#jobs-table pre"),
        ("/failed", "#failed-table .message"),
        ("/delayed", "#delayed-table code"),
        (f"/delayed/{due}", "table.jobs pre"),
    ]:
        page.goto(base_url + path)
        no_reload_marker(page)
        target = page.locator(selector).first
        for details in page.locator("details").all():
            details.evaluate("d => d.open = true")
        expect(target).to_contain_text("<script>window.__xss=1</script>")
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src=x]").count() == 0
        shot(page, "xss-" + path.strip("/").replace("/", "-"))
    page.goto(f"{base_url}/apps")
    page.fill('input[name="event_type"]', XSS)
    page.fill('textarea[name="event"]', json.dumps({"x": XSS}))
    page.click("button:text-is('Run the matchers')")
    expect(page.locator("#who-gets-result")).to_contain_text("No subscription matches")
    expect(page.locator('textarea[name="event"]')).to_have_value(json.dumps({"x": XSS}))
    page.wait_for_timeout(1200)  # two live refreshes
    assert page.evaluate("window.__xss") is None and alerts == []


def test_screenshots_of_every_page(page: Page, base_url: str, bus: Bus, r: redis.Redis) -> None:
    calls: list[dict[str, Any]] = []
    declare_shop(bus, calls)
    bus.subscribe_all()
    fill_queue(
        r, "shop_default", [rider_job("shop", "order_placed", "order_placed", "shop_default", id=i) for i in range(75)]
    )
    for i in range(8):
        r.rpush("resque:failed", failure(exc=RuntimeError(f"card declined {i}"), id=i))
    r.rpush("resque:failed", failure("mail_default", "mail", KeyError("welcome.html")))
    for minutes in (5, 60, 24 * 60):
        schedule(r, int(time.time()) + minutes * 60, delayed_job("reminder", minutes=minutes))
    with running_worker(bus, ["bus_incoming", "shop_critical"]):
        bus.publish_many([("user_signed_up", {"id": i}) for i in range(20)])
        wait_for(lambda: len(calls) == 20)
        for path, name in [
            ("/", "overview"),
            ("/apps", "apps"),
            ("/queues", "queues"),
            ("/queues/shop_default?page=2", "queue-page-2"),
            ("/failed", "failed"),
            ("/failed?exception=KeyError", "failed-filtered"),
            ("/delayed", "delayed"),
            ("/metrics", "metrics"),
        ]:
            page.goto(base_url + path)
            expect(page.locator("body")).not_to_be_empty()
            shot(page, "page-" + name)
    assert page.evaluate("1 + 1") == 2


def test_events_appear_live_and_a_trace_shows_the_retry(page: Page, base_url: str, bus: Bus) -> None:
    tries: dict[int, int] = {}

    def crm(attributes: dict[str, Any]) -> None:
        user = int(attributes["user"])
        tries[user] = tries.get(user, 0) + 1
        if user == 0 and tries[user] == 1:
            raise ConnectionError("crm unreachable")

    bus.dispatch("mailer").add("signup", lambda attributes: None)
    bus.dispatch("profile").add("signup", lambda attributes: None)
    bus.dispatch("crm").add("signup", crm, retry=Retry(max_retries=3, base_delay=0.05))
    LoggerApp(bus, LoggerSettings())
    bus.subscribe_all()
    page.goto(f"{base_url}/events")
    expect(page.locator("#empty-log")).to_contain_text("bus logger")
    no_reload_marker(page)
    with running_worker(bus, ["bus_incoming", *bus.app_queues()]):
        ids = [bus.publish("signup", {"user": i, "plan": "pro"}) for i in range(3)]
        rows = page.locator("#events-table tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.first).to_contain_text(ids[2])  # newest first
        expect(page.locator('tr[data-type="signup"] [data-field="total"]')).to_have_text("3")
        expect(page.locator('tr[data-app="crm"] [data-field="processed"]')).to_have_text("4")
        expect(page.locator('#latency tr[data-sub="crm/signup"] [data-field="count"]')).to_have_text("3")
        assert_not_reloaded(page)
        shot(page, "events")
        page.click(f"a.trace-link:text-is('{ids[0]}')")
        expect(page.locator("h1")).to_contain_text(ids[0])
        expect(page.locator('#trace-table tr[data-step="ride"]')).to_have_count(5)
        expect(page.locator('tr[data-outcome="retried"][data-app="crm"]')).to_contain_text(
            "ConnectionError: crm unreachable"
        )
        expect(page.locator('tr[data-outcome="succeeded"][data-app="crm"]')).to_contain_text("retry 1")
        expect(page.locator('tr[data-step="published"]')).to_contain_text("by host")
        expect(page.locator("#logged-event")).to_contain_text('"plan": "pro"')
        shot(page, "trace")


LONG = "q" * 400
HOSTILE_QUEUES = ("\u202eeueuq", "طابور_الطلبات", LONG, "shop/clear")


def test_hostile_names_keep_every_page_within_the_viewport(page: Page, base_url: str, r: redis.Redis) -> None:
    """RTL and override names, a 400-character name and a name ending in /clear: no page grows
    wider than the window, and the /clear queue opens from its link."""
    for queue in HOSTILE_QUEUES:
        app = "\u202egnp.exe" if queue.startswith("\u202e") else queue
        fill_queue(r, queue, [rider_job(app, "s" * 300, "e" * 300, queue, id=i) for i in range(2)])
        r.sadd("resque:bus_apps", app)
        r.hset(f"resque:bus_app:{app}", "s", json.dumps({"queue_name": queue, "key": "s", "class": "X", "matcher": {}}))
        r.rpush("resque:failed", failure(queue=queue, app=app, exc=RuntimeError("x" * 400)))
        schedule(r, int(time.time()) + 300, delayed_job("d" * 400, queue=queue))
    r.xadd("resque:bus:log", {"type": "t" * 400, "bus_id": "1-" + "b" * 400, "event": json.dumps({"x": "y" * 400})})
    pages = {"/": "overview", "/apps": "apps", "/queues": "queues", "/failed": "failed", "/delayed": "delayed"}
    pages |= {"/events": "events", "/queues/" + LONG: "queue-long-name", "/queues/%E2%80%AEeueuq": "queue-rtl"}
    for path, name in pages.items():
        page.goto(base_url + path)
        expect(page.locator("main")).not_to_be_empty()
        width = page.evaluate("document.documentElement.scrollWidth")
        shot(page, "hostile-names-" + name)
        assert width <= 1280, (path, width)
    page.goto(base_url + "/queues")
    page.locator('tr[data-queue="shop/clear"] a').click()
    expect(page.locator("h1")).to_have_text("Queue shop/clear")
    assert "[U+202E]eueuq" in page.goto(base_url + "/").text()  # type: ignore[union-attr]
