"""TwilioProvider against the Twilio emulator (the form and auth the twilio SDK sends)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from bus.settings_loader import Secret
from switchboard.errors import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderConfigurationError,
    TransientProviderError,
)
from switchboard.providers import SmsMessage, TwilioConfig, TwilioProvider
from tests.support.emulators import TwilioEmulator
from tests.switchboard.conftest import TWILIO_SENDER

HELLO = SmsMessage(to="+15551234567", body="Hello Ada")


def test_send_creates_a_message_with_basic_auth(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator
) -> None:
    result = twilio_provider.send(
        SmsMessage(to="+15551234567", body="Hello Ada", status_callback="https://example.com/sms-status")
    )

    [request] = twilio_emulator.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{twilio_emulator.account_sid}/Messages.json"
    assert request.basic_auth == (twilio_emulator.account_sid, twilio_emulator.auth_token)
    assert request.form == {
        "To": ["+15551234567"],
        "From": [TWILIO_SENDER],
        "Body": ["Hello Ada"],
        "StatusCallback": ["https://example.com/sms-status"],
    }
    assert result.provider == "twilio"
    assert result.message_id is not None and result.message_id.startswith("SM")
    assert (result.status, result.segments) == ("queued", 1)


def test_messaging_service_sends_without_a_from(twilio_config: TwilioConfig, twilio_emulator: TwilioEmulator) -> None:
    service = "MG" + "1" * 32
    provider = TwilioProvider(replace(twilio_config, from_number=None, messaging_service_sid=service))
    result = provider.send(HELLO)
    form = twilio_emulator.requests[0].form
    assert form["MessagingServiceSid"] == [service]
    assert "From" not in form
    assert (result.status, result.segments) == ("accepted", 0)
    provider.close()


def test_the_message_sender_overrides_the_configured_one(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator
) -> None:
    twilio_provider.send(SmsMessage(to="+15551234567", body="hi", from_="+15559998888"))
    assert twilio_emulator.requests[0].form_value("From") == "+15559998888"


@pytest.mark.parametrize(("body", "expected"), [("a" * 160, 1), ("a" * 161, 2), ("é" * 70, 1), ("€" * 80, 1)])
def test_segments_are_reported(twilio_provider: TwilioProvider, body: str, expected: int) -> None:
    # é is in GSM-7; € is a GSM-7 extension (two septets each); neither switches to UCS-2.
    assert twilio_provider.send(SmsMessage(to="+15551234567", body=body)).segments == expected


def test_one_non_gsm_character_switches_to_ucs2(twilio_provider: TwilioProvider) -> None:
    assert twilio_provider.send(SmsMessage(to="+15551234567", body="a" * 70 + "✓")).segments == 2


def test_kept_alive_connection_is_reused(twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator) -> None:
    twilio_provider.send(HELLO)
    twilio_provider.send(HELLO)
    first, second = twilio_emulator.requests
    assert first.peer == second.peer


def test_concurrent_sends_share_the_provider(twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        sids = list(pool.map(lambda _: twilio_provider.send(HELLO).message_id, range(12)))
    assert len(set(sids)) == 12
    assert len(twilio_emulator.requests) == 12


def test_sends_share_kept_alive_connections(twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: twilio_provider.send(HELLO), range(100)))
    assert twilio_emulator.connections <= 4


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("not-a-number", 21211),
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
def test_recipient_failures_are_recipient_problems(twilio_provider: TwilioProvider, to: str, code: int) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        twilio_provider.send(SmsMessage(to=to, body="hi"))
    assert (caught.value.status, caught.value.code) == (400, str(code))
    assert caught.value.recipient_problem is True


def test_a_number_that_replied_stop(twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator) -> None:
    twilio_emulator.reject("+15557654321", 21610)
    with pytest.raises(PermanentProviderError) as caught:
        twilio_provider.send(SmsMessage(to="+15557654321", body="hi"))
    assert caught.value.code == "21610"
    assert caught.value.recipient_problem is True


def test_body_over_1600_characters_is_permanent(twilio_provider: TwilioProvider) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        twilio_provider.send(SmsMessage(to="+15551234567", body="a" * 1601))
    assert caught.value.code == "21617"
    assert caught.value.recipient_problem is False


def test_wrong_token_is_a_configuration_error_that_never_shows_the_token(twilio_config: TwilioConfig) -> None:
    wrong = "do-not-leak-this-auth-token-0123"
    provider = TwilioProvider(replace(twilio_config, auth_token=Secret(wrong)))
    with pytest.raises(ProviderConfigurationError) as caught:
        provider.send(HELLO)
    assert (caught.value.status, caught.value.code) == (401, "20003")
    for text in (str(caught.value), repr(caught.value)):
        assert wrong not in text
    provider.close()


def test_credentials_and_host_never_come_from_the_environment(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "environment-token")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    provider = TwilioProvider(
        TwilioConfig(
            account_sid=twilio_emulator.account_sid,
            auth_token=Secret(twilio_emulator.auth_token),
            from_number=TWILIO_SENDER,
            base_url=twilio_emulator.url,
        )
    )
    provider.send(HELLO)
    assert twilio_emulator.requests[0].basic_auth == (twilio_emulator.account_sid, twilio_emulator.auth_token)
    provider.close()


def test_rate_limit_honours_retry_after(twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator) -> None:
    twilio_emulator.script(twilio_emulator.error(429, retry_after=7))
    with pytest.raises(TransientProviderError) as caught:
        twilio_provider.send(HELLO)
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (429, "20429", 7)
    assert len(twilio_emulator.requests) == 1


def test_retry_after_of_one_failure_does_not_stick_to_the_next(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator
) -> None:
    twilio_emulator.script(twilio_emulator.error(429, retry_after=7), twilio_emulator.error(503))
    with pytest.raises(TransientProviderError):
        twilio_provider.send(HELLO)
    with pytest.raises(TransientProviderError) as caught:
        twilio_provider.send(HELLO)
    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator, status: int
) -> None:
    twilio_emulator.script(twilio_emulator.error(status))
    with pytest.raises(TransientProviderError) as caught:
        twilio_provider.send(HELLO)
    assert caught.value.status == status
    assert len(twilio_emulator.requests) == 1


def test_stopped_server_is_a_transient_network_error(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator
) -> None:
    twilio_provider.send(HELLO)  # leaves a kept-alive connection in the pool
    twilio_emulator.stop()
    with pytest.raises(TransientProviderError) as caught:
        twilio_provider.send(HELLO)
    assert caught.value.status is None
    assert not isinstance(caught.value, AmbiguousProviderError)  # nothing went out: failing over is safe
    assert twilio_emulator.auth_token not in str(caught.value)


def test_dropped_connection_is_transient_and_not_retried(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator
) -> None:
    twilio_emulator.script(twilio_emulator.drop())
    with pytest.raises(AmbiguousProviderError):  # the request went out before the cut
        twilio_provider.send(HELLO)
    assert len(twilio_emulator.requests) == 1


def test_slow_answer_times_out(twilio_config: TwilioConfig, twilio_emulator: TwilioEmulator) -> None:
    provider = TwilioProvider(replace(twilio_config, timeout=0.2))
    twilio_emulator.script(twilio_emulator.slow(2.0))
    started = time.monotonic()
    with pytest.raises(AmbiguousProviderError) as caught:
        provider.send(HELLO)
    assert time.monotonic() - started < 1.5
    assert "timed out" in str(caught.value)
    provider.close()
