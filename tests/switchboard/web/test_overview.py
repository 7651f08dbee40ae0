"""The switchboard's front page (channels live or in dev mode, counts) and its lines on /metrics."""

from __future__ import annotations

import re
import time

import redis

from bus import Bus
from bus.web import WebSettings
from switchboard.channel_states import ChannelStates
from switchboard.keys import SwitchboardKeys
from switchboard.providers import SmsMessage
from switchboard.web import create_switchboard_app
from tests.switchboard.web.conftest import settings_for
from tests.switchboard.web.helpers import record, send_to_outbox
from tests.switchboard.web.test_suppressions import suppress
from tests.web.conftest import Client


def channel_row(html: str, channel: str) -> str:
    return html.split(f'<tr data-channel="{channel}">')[1].split("</tr>")[0]


def test_channels_say_live_or_outbox_and_never_how(client: Client) -> None:
    page = client.page("/switchboard").text
    email, sms, push = (channel_row(page, c) for c in ("email", "sms", "push"))
    assert "sendgrid" in email and 'pill ok">live' in email and "from Acme &lt;no-reply@acme.example&gt;" in email
    assert "twilio" in sms and "live" in sms and "from +15550001111" in sms
    assert "outbox (dev mode)" in push and "no credentials configured" in push
    assert '<a href="/switchboard" aria-current="page">Switchboard</a>' in page


def test_in_dev_mode_every_channel_goes_to_the_outbox(bus: Bus) -> None:
    app = create_switchboard_app(bus, WebSettings(), settings_for(live=False))
    with Client(app, base_url="http://localhost") as c:
        page = c.page("/switchboard").text
        assert page.count('<span class="pill">outbox (dev mode)</span>') == 3 and "sendgrid" not in page


def test_counts_by_channel_and_status(client: Client, bus: Bus) -> None:
    for i in range(3):
        record(bus, f"s{i}")
    record(bus, "f1", status="failed")
    record(bus, "p1", channel="push", to="device-token-0123456789", status="retrying")
    suppress(bus, "email", "bob@example.com", "bounced")
    send_to_outbox(SmsMessage(to="+14155550123", body="hi"), bus)
    page = client.page("/switchboard").text
    counts = page.split('id="counts-table"')[1].split("</table>")[0]
    email = channel_row(counts, "email")
    assert '?channel=email&amp;status=accepted">3</a>' in email and '?channel=email&amp;status=failed">1</a>' in email
    assert '?channel=push&amp;status=retrying">1</a>' in channel_row(counts, "push")
    assert '<a href="/switchboard/suppressions?channel=email">1</a>' in email
    assert "1 message(s)" in page


def test_counts_come_from_counters_not_from_reading_every_record(client: Client, bus: Bus, r: redis.Redis) -> None:
    delivery_id = record(bus, "s1")
    record(bus, "s2")
    r.delete(f"resque:switchboard:delivery:{delivery_id}")  # expired: its outcome still counts
    counts = client.page("/switchboard").text.split('id="counts-table"')[1].split("</table>")[0]
    assert '?channel=email&amp;status=accepted">2</a>' in channel_row(counts, "email")
    assert 'switchboard_outcomes_total{channel="email",status="accepted"} 2.0\n' in client.get("/metrics").text


def test_metrics_add_outcomes_by_channel_and_status(client: Client, bus: Bus) -> None:
    for i in range(2):
        record(bus, f"s{i}")
    record(bus, "f1", status="failed")
    record(bus, "m1", channel="sms", to="+14155550123")
    suppress(bus, "sms", "+14155550123", "invalid")
    response = client.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    assert "bus_processed_total" in text and text.index("bus_workers") < text.index("switchboard_outcomes_total")
    assert 'switchboard_outcomes_total{channel="email",status="accepted"} 2.0\n' in text
    assert 'switchboard_outcomes_total{channel="email",status="failed"} 1.0\n' in text
    assert 'switchboard_outcomes_total{channel="sms",status="accepted"} 1.0\n' in text
    assert 'switchboard_suppressions{channel="sms"} 1.0\n' in text
    assert 'switchboard_channel_provider{channel="email",provider="sendgrid"} 1.0\n' in text
    assert "switchboard_template_problems 0.0\n" in text and "switchboard_outbox_messages 0.0\n" in text
    assert "# TYPE switchboard_outcomes_total counter" in text
    for line in text.splitlines():  # every line parses as Prometheus text
        assert line.startswith("# ") or re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.]+', line)


def test_openmetrics_has_the_switchboard_families_before_its_one_end(client: Client, bus: Bus) -> None:
    record(bus, "s1")
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    text = client.get("/metrics", headers={"accept": accept}).text
    assert text.count("# EOF") == 1 and text.endswith("# EOF\n")
    assert text.index("bus_workers") < text.index('switchboard_outcomes_total{channel="email",status="accepted"} 1.0\n')


def test_a_stopped_channel_or_sender_shows_on_the_overview_and_in_metrics(client: Client, bus: Bus) -> None:
    states = ChannelStates(bus.redis, SwitchboardKeys(bus.keys), time.time)
    states.stop("sms", "Twilio answered 401 (code 20003): Authenticate", delay=300, provider="twilio")
    states.stop("email:sender:ops@acme.example", "SendGrid answered 403: unverified sender", delay=300)
    page = client.page("/switchboard").text
    row = page[page.index('data-channel="sms"') :]
    assert "stopped" in row[: row.index("</tr>")] and "Authenticate" in row[: row.index("</tr>")]
    assert "ops@acme.example" in page
    text = client.get("/metrics").text
    assert 'switchboard_channel_stopped{scope="sms"} 1.0\n' in text
    assert 'switchboard_channel_stopped{scope="email:sender:ops@acme.example"} 1.0\n' in text
    states.resume("sms")
    assert 'switchboard_channel_stopped{scope="sms"}' not in client.get("/metrics").text
