"""Templates: the list, a template previewed in every locale, the sandboxed HTML frame, the data editor."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from bus import Bus
from bus.web import WebSettings
from switchboard.web import create_switchboard_app
from switchboard.web.frames import FRAME_POLICY
from tests.switchboard.web.conftest import settings_for
from tests.switchboard.web.helpers import ESCAPE, WELCOME, templates_with
from tests.web.conftest import Client
from tests.web.helpers import XSS

WELCOME_PAGE = "/switchboard/templates/email/welcome"
_FRAMES = re.compile(r'<iframe class="sb-frame" sandbox src="([^"]+)" title="([^"]+)"')


def frames(html: str) -> list[str]:
    return [src.replace("&amp;", "&") for src, _ in _FRAMES.findall(html)]


def previews(html: str) -> dict[str, str]:
    """Each locale's preview article, by locale."""
    return dict(re.findall(r'<article class="sb-preview" data-locale="([^"]+)">(.*?)</article>', html, re.S))


def test_the_list_shows_every_template_with_channels_locales_and_status(client: Client) -> None:
    page = client.page("/switchboard/templates").text
    for key in ("email/welcome", "email/password_reset", "sms/password_reset", "push/order_shipped"):
        assert f'data-template="{key}"' in page
    welcome = page.split('data-template="email/welcome"')[1].split("</tr>")[0]
    assert "en, fr" in welcome and '<span class="pill ok">renders</span>' in welcome
    assert 'href="/switchboard/templates/email/welcome"' in welcome
    assert '<a href="/switchboard/templates" aria-current="page">Templates</a>' in page


def test_a_template_is_previewed_in_each_locale_from_its_sample(client: Client) -> None:
    page = client.page(WELCOME_PAGE)
    assert page.status_code == 200
    by_locale = previews(page.text)
    assert list(by_locale) == ["en", "fr"]
    assert "Welcome to Acme, Ada!" in by_locale["en"] and "Bienvenue chez Acme, Ada !" in by_locale["fr"]
    assert 'href="/switchboard/templates/push/welcome"' in page.text  # the same name on another channel
    assert "&#34;first_name&#34;: &#34;Ada&#34;" in page.text  # the sample, in the editor
    en, fr = frames(page.text)
    assert en.startswith("/switchboard/frames/templates/email/welcome/en?v=")
    assert fr.startswith("/switchboard/frames/templates/email/welcome/fr?v=")
    assert "Bienvenue, Ada" in client.page(fr).text and "Welcome, Ada!" in client.page(en).text


def test_html_is_only_shown_in_a_sandboxed_frame_with_a_restrictive_policy(client: Client) -> None:
    page = client.page(WELCOME_PAGE).text
    assert page.count("<iframe") == 2 == len(_FRAMES.findall(page))
    assert "allow-scripts" not in page and "allow-same-origin" not in page
    assert "<table role=" not in page  # the email's own markup never reaches the page
    frame = client.page(frames(page)[0])
    policy = frame.headers["content-security-policy"]
    assert policy == FRAME_POLICY
    for directive in ("sandbox", "default-src 'none'", "img-src data: https:", "style-src 'unsafe-inline'"):
        assert directive in policy.split("; ")
    assert "script-src" not in policy and "frame-ancestors 'self'" in policy
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"
    assert len(frame.headers.get_list("content-security-policy")) == 1
    assert frame.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in client.page(WELCOME_PAGE).headers["content-security-policy"]


def test_the_editor_previews_other_data(client: Client) -> None:
    data = {**WELCOME, "first_name": "Grace", "trial_days": 30}
    page = client.submit(WELCOME_PAGE, {"data": json.dumps(data)})
    assert page.status_code == 200
    by_locale = previews(page.text)
    assert "Welcome to Acme, Grace!" in by_locale["en"] and "Bienvenue chez Acme, Grace !" in by_locale["fr"]
    assert "30 days" in by_locale["en"]
    en, fr = frames(page.text)
    assert en.startswith("/switchboard/frames/previews/") and "Grace" not in en  # a token, not the data
    assert "Welcome, Grace!" in client.page(en).text and "30 days" in client.page(en).text
    assert "Bienvenue, Grace" in client.page(fr).text
    assert "data-live" not in page.text.split('id="previews"')[1][:40]  # typed data is not polled away


def test_hostile_data_is_escaped_on_the_page_and_in_the_frame(client: Client) -> None:
    page = client.submit(WELCOME_PAGE, {"data": json.dumps({**WELCOME, "first_name": XSS})})
    assert "<script>window.__xss" not in page.text and "<img src=x" not in page.text
    assert "Welcome to Acme, &lt;script&gt;window.__xss=1&lt;/script&gt;" in page.text
    html = client.page(frames(page.text)[0])
    assert "<script>" not in html.text and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html.text
    assert html.headers["content-security-policy"] == FRAME_POLICY


def test_template_errors_are_shown_clearly(client: Client) -> None:
    missing = client.submit(WELCOME_PAGE, {"data": json.dumps({"first_name": "Ada"})})
    assert missing.status_code == 200
    for text in previews(missing.text).values():
        assert "data does not fit template.toml: &#39;login_url&#39; is required" in text
    wrong = client.submit(WELCOME_PAGE, {"data": json.dumps({**WELCOME, "login_url": "javascript:alert(1)"})})
    assert "&#39;login_url&#39; must be an http(s) url" in wrong.text
    for bad, why in [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object, not list")]:
        refused = client.submit(WELCOME_PAGE, {"data": bad})
        assert refused.status_code == 400 and why in refused.text and 'id="data-error"' in refused.text


def test_a_sandbox_escape_in_a_template_is_an_error_on_the_page(bus: Bus, tmp_path: Path) -> None:
    folder = templates_with(tmp_path, {"sms/escape/body.txt": ESCAPE, "sms/escape/template.toml": SMS_TOML})
    app = create_switchboard_app(bus, WebSettings(), settings_for(folder))
    with Client(app, base_url="http://localhost") as c:
        listed = c.page("/switchboard/templates").text.split('data-template="sms/escape"')[1].split("</tr>")[0]
        assert "1 problem(s)" in listed and "sandbox: access to attribute &#39;__" in listed and "is unsafe" in listed
        page = c.page("/switchboard/templates/sms/escape").text
        assert 'id="template-problems"' in page
        [error] = re.findall(r'<p class="flash error sb-error" role="alert">(.*?)</p>', page)
        assert error.startswith("sms/escape [en] body.txt: sandbox: access to attribute &#39;__")
        assert error.endswith("is unsafe. (line 1)") and "&lt;class" not in page
        tried = c.submit("/switchboard/templates/sms/escape", {"data": '{"first_name": "Eve"}'}).text
        assert "sandbox: access to attribute" in tried and "Eve" not in tried.split("</textarea>")[1]


SMS_TOML = 'description = "tries to escape"\n[fields]\nfirst_name = "str"\n[sample]\nfirst_name = "Ada"\n'


def test_an_edit_to_a_file_shows_in_the_live_preview(bus: Bus, tmp_path: Path) -> None:
    folder = templates_with(tmp_path, {})
    settings = replace(settings_for(folder), template_refresh_seconds=0.001)
    app = create_switchboard_app(bus, WebSettings(), settings)
    with Client(app, base_url="http://localhost") as c:
        before = c.page(WELCOME_PAGE + "?partial=1").text
        assert "<h1" not in before and "Welcome to Acme, Ada!" in before
        (folder / "email/welcome/subject.txt").write_text("Hello {{ first_name }}, edited\n")
        after = c.page(WELCOME_PAGE + "?partial=1").text
        assert "Hello Ada, edited" in after
        (folder / "email/welcome/body.html").write_text("<p>New body for {{ first_name }}</p>\n")
        changed = c.page(WELCOME_PAGE + "?partial=1").text
        assert frames(changed)[0] != frames(after)[0]  # the frame URL changes, so the frame reloads
        assert c.page(frames(changed)[0]).text == "<p>New body for Ada</p>"


def test_unknown_templates_locales_and_previews_are_not_found(client: Client) -> None:
    missing = client.page("/switchboard/templates/email/welcom")
    assert missing.status_code == 404 and "did you mean email/welcome" in missing.text
    assert client.page("/switchboard/templates/fax/welcome").status_code == 404
    assert client.page("/switchboard/frames/templates/email/welcome/de").status_code == 404
    assert client.page("/switchboard/frames/templates/sms/password_reset/en").status_code == 404  # no HTML part
    expired = client.page("/switchboard/frames/previews/not-a-token")
    assert expired.status_code == 404 and "expired" in expired.text
    assert expired.headers["content-security-policy"] == FRAME_POLICY
