"""VonageProvider: the real vonage SDK (v4) against the Vonage emulator over https."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from bus.settings_loader import Secret
from switchboard.errors import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderConfigurationError,
    SettingsError,
    TransientProviderError,
)
from switchboard.providers import SmsMessage, VonageConfig, VonageProvider
from tests.support.emulators import VonageEmulator
from tests.support.tls import TlsFiles

HELLO = SmsMessage(to="+447700900123", body="Hello Ada")
SENDER = "+15550001111"


@pytest.fixture
def emulator(certificates: TlsFiles) -> Iterator[VonageEmulator]:
    with VonageEmulator(tls=certificates.server_context()) as running:
        yield running


@pytest.fixture
def config(emulator: VonageEmulator, certificates: TlsFiles) -> VonageConfig:
    return VonageConfig(
        api_key=emulator.api_key,
        api_secret=Secret(emulator.api_secret),
        from_number=SENDER,
        base_url=emulator.url,
        ca_file=certificates.ca_file,
        timeout=2.0,
    )


@pytest.fixture
def provider(config: VonageConfig) -> Iterator[VonageProvider]:
    vonage = VonageProvider(config)
    yield vonage
    vonage.close()


def test_send_posts_the_form_with_basic_auth(provider: VonageProvider, emulator: VonageEmulator) -> None:
    result = provider.send(HELLO)
    [request] = emulator.requests
    assert request.path == "/sms/json"
    assert request.basic_auth == (emulator.api_key, emulator.api_secret)
    assert request.form == {"to": ["447700900123"], "from": ["15550001111"], "text": ["Hello Ada"]}
    assert result.provider == "vonage" and result.message_id and result.segments == 1


def test_a_body_outside_gsm7_is_sent_as_unicode(provider: VonageProvider, emulator: VonageEmulator) -> None:
    provider.send(SmsMessage(to="+447700900123", body="Code 4821 ✓"))
    provider.send(SmsMessage(to="+447700900123", body="Prix: 5€ é"))  # GSM-7, extension table included
    assert [r.form_value("type") for r in emulator.requests] == ["unicode", None]


def test_a_long_body_reports_its_parts(provider: VonageProvider) -> None:
    assert provider.send(SmsMessage(to="+447700900123", body="a" * 320)).segments == 3


def test_status_callback_asks_for_a_receipt(config: VonageConfig, emulator: VonageEmulator) -> None:
    provider = VonageProvider(replace(config, status_callback="https://example.com/vonage/dlr"))
    provider.send(HELLO)
    provider.close()
    form = emulator.requests[0].form
    assert form["callback"] == ["https://example.com/vonage/dlr"] and form["status-report-req"] == ["True"]


def test_kept_alive_connection_is_reused_and_threads_share_the_provider(
    provider: VonageProvider, emulator: VonageEmulator
) -> None:
    provider.send(HELLO)
    provider.send(HELLO)
    assert emulator.requests[0].peer == emulator.requests[1].peer
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(lambda _: provider.send(HELLO).message_id, range(12)))
    assert len(set(ids)) == 12


@pytest.mark.parametrize(("to", "status"), [("+15005550001", "6"), ("+15005550004", "7"), ("+15005550009", "33")])
def test_recipient_statuses_are_recipient_problems(provider: VonageProvider, to: str, status: str) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        provider.send(SmsMessage(to=to, body="hi"))
    assert caught.value.code == status and caught.value.recipient_problem
    assert caught.value.recipients == (to,)  # the one to suppress
    assert to not in str(caught.value)  # masked


def test_an_invalid_to_address_is_a_recipient_problem(provider: VonageProvider) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        provider.send(SmsMessage(to="+12", body="hi"))
    assert (caught.value.code, caught.value.recipient_problem) == ("3", True)


def test_a_message_too_long_is_permanent_not_about_the_recipient(provider: VonageProvider) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        provider.send(SmsMessage(to="+447700900123", body="a" * 1200))
    assert (caught.value.code, caught.value.recipient_problem) == ("12", False)


def test_bad_credentials_are_a_configuration_error_that_never_shows_the_secret(
    config: VonageConfig, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-secret-do-not-leak-77"
    provider = VonageProvider(replace(config, api_secret=Secret(wrong)))
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderConfigurationError) as caught:
        provider.send(HELLO)
    provider.close()
    assert caught.value.code == "4"
    basic = base64.b64encode(f"{config.api_key}:{wrong}".encode()).decode()
    everything = str(caught.value) + repr(caught.value) + caplog.text
    for secret in (wrong, basic, "447700900123"):
        assert secret not in everything  # the SDK logs the Authorization header and the recipient at DEBUG


@pytest.mark.parametrize("status", [8, 9])
def test_account_problems_are_configuration_errors(
    provider: VonageProvider, emulator: VonageEmulator, status: int
) -> None:
    emulator.script(emulator.status(status))
    with pytest.raises(ProviderConfigurationError) as caught:
        provider.send(HELLO)
    assert caught.value.sender is None  # the whole channel


def test_an_invalid_sender_stops_that_sender_only(provider: VonageProvider, emulator: VonageEmulator) -> None:
    emulator.script(emulator.status(15))
    with pytest.raises(ProviderConfigurationError) as caught:
        provider.send(HELLO)
    assert caught.value.sender == "15550001111"


def test_throttled_status_is_transient(provider: VonageProvider, emulator: VonageEmulator) -> None:
    emulator.script(emulator.status(1))
    with pytest.raises(TransientProviderError) as caught:
        provider.send(HELLO)
    assert caught.value.code == "1" and not isinstance(caught.value, AmbiguousProviderError)


def test_a_part_failing_after_others_were_accepted_is_ambiguous(
    provider: VonageProvider, emulator: VonageEmulator
) -> None:
    emulator.script(emulator.status(1, parts=3, failing=2))
    with pytest.raises(AmbiguousProviderError, match="2 of 3 parts accepted"):
        provider.send(HELLO)


def test_429_honours_retry_after(provider: VonageProvider, emulator: VonageEmulator) -> None:
    emulator.script(emulator.error(429, retry_after=7))
    with pytest.raises(TransientProviderError) as caught:
        provider.send(HELLO)
    assert (caught.value.status, caught.value.retry_after) == (429, 7)
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(provider: VonageProvider, emulator: VonageEmulator, status: int) -> None:
    emulator.script(emulator.error(status))
    with pytest.raises(TransientProviderError) as caught:
        provider.send(HELLO)
    assert caught.value.status == status
    assert len(emulator.requests) == 1


def test_http_401_is_a_configuration_error(provider: VonageProvider, emulator: VonageEmulator) -> None:
    emulator.script(emulator.error(401))
    with pytest.raises(ProviderConfigurationError):
        provider.send(HELLO)


def test_a_dropped_connection_is_sent_once_and_ambiguous(provider: VonageProvider, emulator: VonageEmulator) -> None:
    emulator.script(emulator.drop(), emulator.drop(), emulator.drop())
    with pytest.raises(AmbiguousProviderError):
        provider.send(HELLO)
    assert len(emulator.requests) == 1  # the SDK alone would resend it up to 10 times


def test_a_stopped_server_is_transient_and_not_ambiguous(config: VonageConfig, emulator: VonageEmulator) -> None:
    provider = VonageProvider(config)
    emulator.stop()
    with pytest.raises(TransientProviderError) as caught:
        provider.send(HELLO)
    provider.close()
    assert not isinstance(caught.value, AmbiguousProviderError)


def test_slow_answer_times_out_ambiguously_within_a_fraction_of_a_second(
    config: VonageConfig, emulator: VonageEmulator
) -> None:
    provider = VonageProvider(replace(config, timeout=0.3))
    emulator.script(emulator.slow(3.0))
    started = time.monotonic()
    with pytest.raises(AmbiguousProviderError, match="timed out"):
        provider.send(HELLO)
    assert time.monotonic() - started < 2.0  # the SDK's own options take whole seconds only
    provider.close()


def test_an_untrusted_certificate_is_a_configuration_error(config: VonageConfig, emulator: VonageEmulator) -> None:
    provider = VonageProvider(replace(config, ca_file=None))
    with pytest.raises(ProviderConfigurationError, match="certificate"):
        provider.send(HELLO)
    provider.close()


def test_settings_refuse_a_base_url_the_sdk_cannot_use() -> None:
    with pytest.raises(SettingsError, match="https"):
        VonageConfig(api_key="k", api_secret=Secret("s"), base_url="http://127.0.0.1:9000")
    assert VonageConfig(base_url="https://127.0.0.1:9000").rest_host == "127.0.0.1:9000"
    assert VonageConfig().rest_host == "rest.nexmo.com"


def test_without_a_sender_the_provider_says_so(config: VonageConfig) -> None:
    with pytest.raises(ProviderConfigurationError, match="from_number"):
        VonageProvider(replace(config, from_number=None))
