"""The dev outbox: messages newest first, recipients masked, HTML in the sandboxed frame, clear."""

from __future__ import annotations

import re

import redis

from bus import Bus
from bus.web import WebSettings
from switchboard.channels import Channel
from switchboard.keys import SwitchboardKeys
from switchboard.live_channels import LiveChannels
from switchboard.providers import EmailMessage, PushMessage, SmsMessage
from switchboard.web import create_switchboard_app
from switchboard.web.frames import FRAME_POLICY, NO_REMOTE_IMAGES_POLICY
from tests.switchboard.web.conftest import settings_for
from tests.switchboard.web.helpers import WELCOME, send_for_real, send_to_outbox
from tests.switchboard.web.test_overview import channel_row
from tests.web.conftest import Client
from tests.web.helpers import XSS

OUTBOX_KEY = "resque:switchboard:outbox"


def message_ids(html: str) -> list[str]:
    return re.findall(r'<article class="sb-message" data-id="([^"]+)"', html)


def test_messages_newest_first_with_recipients_masked(client: Client, bus: Bus) -> None:
    send_for_real(
        bus, ("send_email", {"to": "ada@example.com", "template": "welcome", "data": WELCOME, "locale": "fr"})
    )
    sms = send_to_outbox(SmsMessage(to="+14155550123", body="Your code is 482913"), bus)
    push = send_to_outbox(PushMessage(tokens=("device-token-0123456789abcdef",), title="Shipped", body="A-1042"), bus)
    page = client.page("/switchboard/outbox").text
    ids = message_ids(page)
    assert ids[:2] == [push, sms] and len(ids) == 3
    assert "ada@example.com" not in page and "a***@example.com" in page
    assert "+14155550123" not in page and "+1415*****23" in page
    assert "device-token-0123456789abcdef" not in page and "devi…cdef" in page
    assert "Bienvenue chez Acme, Ada !" in page and "Your code is 482913" in page
    assert message_ids(client.page("/switchboard/outbox?channel=sms").text) == [sms]
    assert "3 message(s)" in page


def test_html_bodies_are_shown_in_the_sandboxed_frame(client: Client, bus: Bus) -> None:
    send_for_real(bus, ("send_email", {"to": "ada@example.com", "template": "welcome", "data": WELCOME}))
    page = client.page("/switchboard/outbox").text
    [src] = re.findall(r'<iframe class="sb-frame" sandbox src="([^"]+)"', page)
    assert src.startswith("/switchboard/frames/outbox/outbox-") and "allow-" not in page
    frame = client.page(src)
    assert frame.status_code == 200 and "Welcome, Ada!" in frame.text
    assert frame.headers["content-security-policy"] == NO_REMOTE_IMAGES_POLICY
    gone = client.page("/switchboard/frames/outbox/outbox-0000")
    assert gone.status_code == 404 and gone.headers["content-security-policy"] == NO_REMOTE_IMAGES_POLICY


def test_hostile_messages_are_escaped_and_their_html_stays_in_the_frame(client: Client, bus: Bus) -> None:
    hostile = EmailMessage(
        to=[XSS + "@example.com"],
        subject=XSS,
        text=XSS,
        html=f"<h1>{XSS}</h1>",
        from_email=XSS,
        headers={XSS: XSS},
        categories=[XSS],
    )
    message_id = send_to_outbox(hostile, bus)
    send_to_outbox(PushMessage(topic=XSS, title=XSS, body=XSS, data={XSS: XSS}), bus)
    for html in (client.page("/switchboard/outbox").text, client.page("/switchboard/outbox?partial=1").text):
        assert "<script>window.__xss" not in html and "<img src=x" not in html
        assert html.count("&lt;script&gt;window.__xss=1&lt;/script&gt;") >= 6
    frame = client.page(f"/switchboard/frames/outbox/{message_id}")
    assert "<script>window.__xss=1</script>" in frame.text  # served as the message is: the sandbox is the defence
    assert frame.headers["content-security-policy"] == NO_REMOTE_IMAGES_POLICY


def test_a_hand_made_entry_with_odd_fields_still_shows(client: Client, bus: Bus, r: redis.Redis) -> None:
    r.lpush(OUTBOX_KEY, '{"id": "a/b<c>", "channel": "email", "to": 7, "html": "<p>x</p>"}')
    page = client.page("/switchboard/outbox")
    assert page.status_code == 200 and 'data-id="a/b&lt;c&gt;"' in page.text
    assert "<iframe" not in page.text  # no frame link for an id that cannot be one


def test_clearing_asks_first(client: Client, bus: Bus, r: redis.Redis) -> None:
    for i in range(3):
        send_to_outbox(SmsMessage(to="+14155550123", body=f"message {i}"), bus)
    asked = client.submit("/switchboard/outbox/clear")
    assert asked.status_code == 200 and "Clear the outbox?" in asked.text and "all 3 message(s)" in asked.text
    assert '<input type="hidden" name="confirm" value="yes">' in asked.text
    assert 'action="/switchboard/outbox/clear"' in asked.text
    assert r.llen(OUTBOX_KEY) == 3
    done = client.submit("/switchboard/outbox/clear", {"confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/switchboard/outbox"
    assert r.llen(OUTBOX_KEY) == 0
    page = client.page("/switchboard/outbox").text
    assert "Cleared the outbox: removed 3 message(s)." in page and "The outbox is empty" in page


def test_clearing_without_the_csrf_token_is_refused(client: Client, bus: Bus, r: redis.Redis) -> None:
    send_to_outbox(SmsMessage(to="+14155550123", body="stay"), bus)
    client.csrf()  # the cookie is set; the token is simply not sent
    refused = client.post("/switchboard/outbox/clear", data={"confirm": "yes"})
    assert refused.status_code == 403 and r.llen(OUTBOX_KEY) == 1


def test_outbox_frames_load_remote_images_only_when_asked(client: Client, bus: Bus) -> None:
    tracked = EmailMessage(to=["ada@example.com"], subject="s", text="t", html='<img src="https://t.example/px.gif">')
    send_to_outbox(tracked, bus)
    page = client.page("/switchboard/outbox").text
    [src] = re.findall(r'<iframe class="sb-frame" sandbox src="([^"]+)"', page)
    policy = client.page(src).headers["content-security-policy"]
    assert "img-src data:;" in policy and "https:" not in policy
    assert "Load remote images" in page
    shown = client.page("/switchboard/outbox?images=remote").text
    [src] = re.findall(r'<iframe class="sb-frame" sandbox src="([^"]+)"', shown)
    assert src.endswith("?images=remote") and client.page(src).headers["content-security-policy"] == FRAME_POLICY
    sample = client.page("/switchboard/frames/templates/email/welcome/en")
    assert sample.headers["content-security-policy"] == FRAME_POLICY  # the dashboard's own templates


def test_live_channels_are_the_ones_the_workers_recorded_not_the_dashboards_environment(
    bus: Bus, r: redis.Redis
) -> None:
    """A dashboard without credentials, beside workers with them: the workers' word counts."""
    app = create_switchboard_app(bus, WebSettings(), settings_for(live=False))
    with Client(app, base_url="http://localhost") as c:
        assert "Live channels" not in c.page("/switchboard/outbox").text  # nothing recorded: its own settings
        LiveChannels(bus.redis, SwitchboardKeys(bus.keys)).record(
            {Channel.EMAIL: "sendgrid", Channel.SMS: "outbox", Channel.PUSH: "fcm"}
        )
        assert "Live channels (email, push) send for real" in c.page("/switchboard/outbox").text
        overview = c.page("/switchboard").text
        assert 'pill ok">live' in channel_row(overview, "email") and "as the running workers recorded" in overview
        assert "outbox (dev mode)" in channel_row(overview, "sms")
        assert 'switchboard_channel_provider{channel="push",provider="fcm"} 1' in c.page("/metrics").text
        r.delete("resque:switchboard:live_channels")  # the last worker went away long ago
        assert "Live channels" not in c.page("/switchboard/outbox").text
