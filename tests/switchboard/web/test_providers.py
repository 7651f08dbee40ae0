"""Providers and limits on the dashboard and /metrics: circuits (reset after confirming), rate
limits and waits, recipients refused by their limit (masked)."""

from __future__ import annotations

import redis

from bus import Bus
from switchboard.circuits import Circuits, CircuitSettings
from switchboard.errors import ProviderConfigurationError
from switchboard.keys import SwitchboardKeys
from switchboard.recipient_limits import RecipientLimit, RecipientLimits
from switchboard.standing import RateWaits
from tests.switchboard.web.conftest import SECRETS
from tests.web.conftest import Client


def provider_row(html: str, provider: str) -> str:
    return html.split(f'<tr data-provider="{provider}"')[1].split("</tr>")[0]


def test_circuits_rates_and_waits_are_listed_and_an_open_circuit_reset_after_confirming(
    client: Client, bus: Bus, r: redis.Redis
) -> None:
    keys = SwitchboardKeys(bus.keys)
    Circuits(r, keys, CircuitSettings()).record_failure("twilio", ProviderConfigurationError("401", status=401))
    pipe = r.pipeline()
    RateWaits(r, keys).queue_count(pipe, "sendgrid")
    pipe.execute()

    page = client.page("/switchboard/providers").text
    twilio = provider_row(page, "twilio")
    assert 'data-state="open"' in twilio and "ProviderConfigurationError status 401" in twilio and "Reset" in twilio
    sendgrid = provider_row(page, "sendgrid")
    assert 'data-state="closed"' in sendgrid and "Reset" not in sendgrid and '<td class="num">1</td>' in sendgrid
    assert "<strong>sms</strong>: twilio" in page and "outbox (dev mode)" in page
    assert not any(secret in page for secret in SECRETS)

    asked = client.submit("/switchboard/providers/reset", {"provider": "twilio"})
    assert asked.status_code == 200 and "Close the circuit of twilio?" in asked.text
    assert Circuits(r, keys, CircuitSettings()).states(["twilio"])[0].state == "open"
    done = client.submit("/switchboard/providers/reset", {"provider": "twilio", "confirm": "yes"})
    assert done.status_code == 303
    assert Circuits(r, keys, CircuitSettings()).states(["twilio"])[0].state == "closed"
    assert "The circuit of twilio is closed." in client.page("/switchboard/providers").text
    unknown = client.submit("/switchboard/providers/reset", {"provider": "vonage", "confirm": "yes"})
    assert unknown.status_code == 303 and "No channel sends through" in client.page("/switchboard/providers").text


def test_recipients_refused_by_their_limit_are_listed_masked(client: Client, bus: Bus, r: redis.Redis) -> None:
    store = RecipientLimits(r, SwitchboardKeys(bus.keys))
    limit = RecipientLimit("sms", 5, 3600)  # the SMS channel's default
    for n in range(6):
        store.check(limit, ["+14155550123"], f"sms:{n}")
    page = client.page("/switchboard/providers").text
    sms = page.split('data-scope="sms"')[1].split("</table>")[0]
    assert "+1415*****23" in sms and "5 / 5" in sms and "+14155550123" not in page
    assert 'data-scope="template:sms/password_reset"' in page  # a template with a limit of its own


def test_metrics_show_circuit_states_and_rate_waits(client: Client, bus: Bus, r: redis.Redis) -> None:
    keys = SwitchboardKeys(bus.keys)
    Circuits(r, keys, CircuitSettings()).record_failure("twilio", ProviderConfigurationError("401", status=401))
    pipe = r.pipeline()
    RateWaits(r, keys).queue_count(pipe, "twilio")
    RateWaits(r, keys).queue_count(pipe, "twilio")
    pipe.execute()
    metrics = client.get("/metrics").text
    assert 'switchboard_provider_circuit{provider="twilio",state="open"} 1' in metrics
    assert 'switchboard_provider_circuit{provider="twilio",state="closed"} 0' in metrics
    assert 'switchboard_provider_circuit{provider="sendgrid",state="closed"} 1' in metrics
    assert 'switchboard_rate_limit_waits_total{provider="twilio"} 2' in metrics
    assert 'switchboard_rate_limit_waits_total{provider="sendgrid"} 0' in metrics
