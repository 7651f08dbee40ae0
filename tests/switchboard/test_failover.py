"""Failover decisions on the errors the real SDKs raise against the emulators."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bus.settings_loader import Secret
from switchboard.errors import ProviderError
from switchboard.failover import Outcome, Try, circuit_failure, fails_over, outcome_of
from switchboard.providers import SmsMessage, TwilioConfig, TwilioProvider
from tests.support.emulators import TwilioEmulator

HELLO = SmsMessage(to="+14155550123", body="Hello Ada")


def failure(provider: TwilioProvider, message: SmsMessage = HELLO) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.send(message)
    return caught.value


def test_a_server_error_fails_over_and_counts_against_the_circuit(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator
) -> None:
    twilio_emulator.script(twilio_emulator.error(503))
    error = failure(twilio_provider)
    assert outcome_of(error) is Outcome.TRANSIENT
    assert fails_over(error, failover_on_timeout=False)
    assert circuit_failure(error) is True


def test_a_rate_limit_past_its_retries_fails_over(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator
) -> None:
    twilio_emulator.script(twilio_emulator.error(429, retry_after=30))
    error = failure(twilio_provider)
    assert fails_over(error, failover_on_timeout=False) and outcome_of(error) is Outcome.TRANSIENT


def test_a_bad_recipient_does_not_fail_over_and_shows_the_provider_works(twilio_provider: TwilioProvider) -> None:
    error = failure(twilio_provider, SmsMessage(to="+15005550001", body="Hello"))
    assert outcome_of(error) is Outcome.REFUSED
    assert not fails_over(error, failover_on_timeout=True)
    assert circuit_failure(error) is False


def test_rejected_credentials_fail_over_and_count(twilio_config: TwilioConfig) -> None:
    provider = TwilioProvider(replace(twilio_config, auth_token=Secret("wrong-token-0123456789abcdef0123")))
    try:
        error = failure(provider)
    finally:
        provider.close()
    assert outcome_of(error) is Outcome.CONFIGURATION
    assert fails_over(error, failover_on_timeout=False)
    assert circuit_failure(error) is True


def test_a_timeout_fails_over_only_when_the_channel_says_so(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator
) -> None:
    twilio_emulator.script(twilio_emulator.drop())
    error = failure(twilio_provider)
    assert outcome_of(error) is Outcome.TIMEOUT
    assert not fails_over(error, failover_on_timeout=False)
    assert fails_over(error, failover_on_timeout=True)
    assert circuit_failure(error) is True


def test_a_stopped_provider_is_a_network_failure_that_fails_over(
    twilio_provider: TwilioProvider, twilio_emulator: TwilioEmulator
) -> None:
    twilio_emulator.stop()
    error = failure(twilio_provider)
    assert outcome_of(error) is Outcome.TRANSIENT  # nothing went out: safe to send elsewhere
    assert fails_over(error, failover_on_timeout=False)


def test_a_try_as_recorded_leaves_out_what_it_does_not_have() -> None:
    assert Try("twilio", Outcome.SENT).to_json() == {"provider": "twilio", "outcome": "sent"}
    assert Try("twilio", Outcome.TRANSIENT, "503 from Twilio", "20503").to_json() == {
        "provider": "twilio",
        "outcome": "transient",
        "error": "503 from Twilio",
        "code": "20503",
    }
