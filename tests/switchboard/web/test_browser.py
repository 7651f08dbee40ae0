"""End to end in a real headless Chromium: previews in two locales, the data editor, hostile
data kept inert in the sandboxed frame, the outbox and suppressions. Screenshots go to
test-output/screenshots/switchboard-*.png."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Dialog, FrameLocator, Page, expect

from bus import Bus
from bus.web import WebSettings
from switchboard.providers import EmailMessage, SmsMessage
from switchboard.settings import SwitchboardSettings
from switchboard.web import create_switchboard_app
from tests.switchboard.web.conftest import settings_for
from tests.switchboard.web.helpers import WELCOME, record, send_for_real, send_to_outbox, templates_with
from tests.switchboard.web.test_suppressions import suppress
from tests.web.browser import chromium_binary, serving
from tests.web.helpers import XSS
from tests.web.test_browser import shot

pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="no Chromium binary (apt-get install chromium)")
# Tries both: a script, and an image whose (CSP-blocked) load fails into an onerror handler.
HOSTILE = XSS + "<script>alert('xss')</script><img src=x onerror=\"alert('xss')\">"
RAW_TEMPLATE = {
    "email/raw/template.toml": 'description = "renders its data raw"\n[fields]\nnote = "str"\n[sample]\nnote = "hi"\n',
    "email/raw/subject.txt": "Raw\n",
    "email/raw/body.html": "<p id='note'>{{ note|safe }}</p>\n",
}


def serve(redis_url: str, settings: SwitchboardSettings) -> Iterator[str]:
    dashboard_bus = Bus(redis_url)
    with serving(create_switchboard_app(dashboard_bus, WebSettings(), settings, live_interval=0.5)) as url:
        yield url
    dashboard_bus.close()


@pytest.fixture
def base_url(redis_url: str, tmp_path: Path) -> Iterator[str]:
    yield from serve(redis_url, settings_for(templates_with(tmp_path, RAW_TEMPLATE)))


def dialogs(page: Page) -> list[str]:
    """Every dialog the page or a frame opens: confirmations are accepted, anything else dismissed."""
    seen: list[str] = []

    def answer(dialog: Dialog) -> None:
        seen.append(f"{dialog.type}: {dialog.message}")
        if dialog.type == "confirm":
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    return seen


def tall_shot(page: Page, name: str) -> None:
    """A screenshot tall enough to hold every frame: Chromium paints none that is off screen."""
    page.set_viewport_size({"width": 1280, "height": page.evaluate("document.body.scrollHeight")})
    shot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})


def preview(page: Page, locale: str) -> FrameLocator:
    return page.frame_locator(f'article[data-locale="{locale}"] iframe')


def test_preview_the_welcome_email_in_english_and_french(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/switchboard/templates")
    page.locator('tr[data-template="email/welcome"] a').click()
    expect(page.locator("h1")).to_have_text("Template email/welcome")
    expect(preview(page, "en").locator("h1")).to_have_text("Welcome, Ada!")
    expect(preview(page, "fr").locator("h1")).to_have_text("Bienvenue, Ada\u00a0!")
    expect(page.locator('article[data-locale="fr"] pre[data-part="subject"]')).to_have_text(
        "Bienvenue chez Acme, Ada !"
    )
    frames = page.locator("iframe.sb-frame")
    expect(frames).to_have_count(2)
    for i in range(2):
        assert frames.nth(i).get_attribute("sandbox") == ""
    tall_shot(page, "switchboard-template-welcome")


def test_edit_the_data_and_see_the_preview_change(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/switchboard/templates/email/welcome")
    expect(preview(page, "en").locator("h1")).to_have_text("Welcome, Ada!")
    page.fill("#data", json.dumps({**WELCOME, "first_name": "Grace", "trial_days": 30}, indent=2))
    page.click("button:text-is('Preview with this data')")
    expect(preview(page, "en").locator("h1")).to_have_text("Welcome, Grace!")
    expect(preview(page, "en").locator("strong")).to_have_text("30 days")
    expect(preview(page, "fr").locator("h1")).to_have_text("Bienvenue, Grace\u00a0!")
    expect(page.locator('article[data-locale="en"] pre[data-part="subject"]')).to_have_text("Welcome to Acme, Grace!")
    assert "Grace" not in page.url
    tall_shot(page, "switchboard-template-edited")
    page.fill("#data", json.dumps({"first_name": "Grace"}))
    page.click("button:text-is('Preview with this data')")
    expect(page.locator('article[data-locale="en"] .sb-error')).to_contain_text("'login_url' is required")
    shot(page, "switchboard-template-error")
    page.click("text=Back to the sample data")
    expect(preview(page, "en").locator("h1")).to_have_text("Welcome, Ada!")


def test_hostile_data_is_text_or_inert_inside_the_sandboxed_frame(page: Page, base_url: str) -> None:
    opened = dialogs(page)
    page.goto(f"{base_url}/switchboard/templates/email/welcome")
    page.fill("#data", json.dumps({**WELCOME, "first_name": HOSTILE}))
    page.click("button:text-is('Preview with this data')")
    heading = preview(page, "en").locator("h1")
    expect(heading).to_contain_text("<script>window.__xss=1</script>")  # escaped: shown as text
    expect(preview(page, "en").locator("img[src=x]")).to_have_count(0)
    expect(page.locator('article[data-locale="en"] pre[data-part="subject"]')).to_contain_text("<script>")
    tall_shot(page, "switchboard-template-xss-escaped")
    page.goto(f"{base_url}/switchboard/templates/email/raw")  # a template that does not escape
    page.fill("#data", json.dumps({"note": HOSTILE}))
    page.click("button:text-is('Preview with this data')")
    frame = preview(page, "en")
    expect(frame.locator("#note script")).to_have_count(2)  # really there...
    expect(frame.locator("#note img[src=x]")).to_have_count(2)
    page.wait_for_timeout(500)  # ...and given the time to run, yet nothing ran
    assert opened == [] and page.evaluate("window.__xss") is None
    shot(page, "switchboard-template-xss-raw")


def test_outbox_shows_the_html_and_clears_after_confirming(page: Page, base_url: str, bus: Bus) -> None:
    send_for_real(
        bus, ("send_email", {"to": "ada@example.com", "template": "welcome", "data": WELCOME, "locale": "fr"})
    )
    send_to_outbox(EmailMessage(to=["eve@example.com"], subject=XSS, html=f"<h1>{HOSTILE}</h1>"), bus)
    opened = dialogs(page)
    page.goto(f"{base_url}/switchboard/outbox")
    messages = page.locator("article.sb-message")
    expect(messages).to_have_count(2)
    expect(messages.first.locator('[data-field="subject"]')).to_have_text(XSS)
    expect(messages.nth(1)).to_contain_text("a***@example.com")
    messages.nth(1).locator("details.sb-html summary").click()
    expect(messages.nth(1).frame_locator("iframe").locator("h1")).to_have_text("Bienvenue, Ada\u00a0!")
    messages.first.locator("details.sb-html summary").click()
    expect(messages.first.frame_locator("iframe").locator("h1 script")).to_have_count(2)
    page.wait_for_timeout(500)
    assert opened == [] and page.evaluate("window.__xss") is None
    tall_shot(page, "switchboard-outbox")
    page.click("button:text-is('Clear the outbox…')")
    expect(page.locator(".flash")).to_have_text("Cleared the outbox: removed 2 message(s).")
    assert opened == ["confirm: Clear the outbox? Every message in it is deleted."]
    expect(page.locator("#outbox-messages")).to_contain_text("The outbox is empty")


def test_suppress_and_unsuppress_a_recipient(page: Page, base_url: str, r: redis.Redis) -> None:
    page.goto(f"{base_url}/switchboard/suppressions")
    page.select_option('#suppress-form select[name="channel"]', "sms")
    page.fill('#suppress-form input[name="recipient"]', "+14155550123")
    page.fill('#suppress-form input[name="reason"]', "asked us to stop")
    page.click("button:text-is('Suppress')")
    expect(page.locator(".flash")).to_have_text("Suppressed +1415*****23 on sms.")
    expect(page.locator("#suppressions-table")).to_contain_text("asked us to stop")
    shot(page, "switchboard-suppressions")
    asked = dialogs(page)
    page.click("button:text-is('Remove…')")
    expect(page.locator(".flash")).to_have_text("+1415*****23 is no longer suppressed on sms.")
    assert asked == ["confirm: Contact +1415*****23 on sms again?"]
    assert r.hlen("resque:switchboard:suppressions:sms") == 0


def test_screenshots_of_every_page(page: Page, base_url: str, bus: Bus) -> None:
    send_for_real(
        bus,
        ("send_email", {"to": "ada@example.com", "template": "welcome", "data": WELCOME, "locale": "fr"}),
        (
            "send_sms",
            {"to": "+14155550123", "template": "password_reset", "data": {"code": "482913", "expires_minutes": 10}},
        ),
    )
    record(
        bus,
        "bounced-1",
        to="bounced@example.com",
        status="failed",
        error="550 mailbox unavailable",
        provider="sendgrid",
    )
    record(bus, "sms-1", channel="sms", to="+14155550199", status="retrying", error="429 Too Many Requests")
    send_to_outbox(SmsMessage(to="+14155550100", body="Your code is 000000"), bus)
    suppress(bus, "email", "bounced@example.com", "550 mailbox unavailable", "550")
    for path, name in [
        ("/switchboard", "overview"),
        ("/switchboard/templates", "templates"),
        ("/switchboard/templates/email/password_reset", "template-password-reset"),
        ("/switchboard/templates/push/order_shipped", "template-push"),
        ("/switchboard/deliveries", "deliveries"),
        ("/switchboard/deliveries?status=failed", "deliveries-failed"),
        ("/switchboard/outbox", "outbox-list"),
        ("/switchboard/suppressions", "suppressions-list"),
        ("/metrics", "metrics"),
    ]:
        page.goto(base_url + path)
        expect(page.locator("body")).not_to_be_empty()
        shot(page, "switchboard-" + name)
    page.goto(f"{base_url}/switchboard/deliveries")
    page.fill('#delivery-search input[name="to"]', "ada@example.com")
    page.click("button:text-is('Search')")
    expect(page.locator("#recipient-filter")).to_contain_text("a***@example.com")
    expect(page.locator("#deliveries-table tbody tr")).to_have_count(1)
    assert "ada@example.com" not in page.url and "ada@example.com" not in page.content()
    shot(page, "switchboard-deliveries-recipient")


@pytest.mark.parametrize("width", [1400, 1280])
def test_the_navigation_fits_on_one_line_and_no_icon_is_missing(page: Page, base_url: str, width: int) -> None:
    """Issue 24 item 14: eleven links, where the dashboard is and its live state, on one line; and a
    favicon, so the first load of a page asks for nothing that is not there."""
    missing: list[str] = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(base_url + "/switchboard/deliveries")
    tops = page.evaluate(
        "[...document.querySelectorAll('header.top > *, header.top nav a')].map(e => e.getBoundingClientRect().top)"
    )
    shot(page, f"switchboard-nav-{width}")
    assert max(tops) - min(tops) < 12, tops
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    icon = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert page.request.get(icon).status == 200
    page.wait_for_load_state("networkidle")
    assert missing == []


def test_hostile_names_keep_the_switchboard_pages_within_the_viewport(page: Page, base_url: str, bus: Bus) -> None:
    """Issue 24 items 8-9 on the switchboard's pages: a 400-character unbroken value, right-to-left
    text and an override in records and outbox messages, in a 1280 px window."""
    long, rtl = "x" * 400, "\u202egnp.exe طلب"
    delivery_id = record(bus, "r" * 400, error=long + rtl, provider="outbox", provider_message_id="outbox-" + long)
    send_to_outbox(EmailMessage(to=["ada@example.com"], subject=long + rtl, text=long, html=f"<p>{long}</p>"), bus)
    pages = {"/switchboard/deliveries": "deliveries", "/switchboard/outbox": "outbox", "/switchboard": "overview"}
    pages[f"/switchboard/deliveries/record?id={delivery_id}"] = "delivery"
    for path, name in pages.items():
        page.goto(base_url + path)
        expect(page.locator("main")).not_to_be_empty()
        shot(page, "switchboard-hostile-names-" + name)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, path
        assert "\u202e" not in page.locator("main").inner_text(), path
