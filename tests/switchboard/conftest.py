"""Provider fixtures: the real SDK clients, each pointed at a fresh local emulator; the webhook
keys, and the stack the delivery-status tests drive."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bus.settings_loader import Secret
from switchboard.providers import (
    FcmConfig,
    FcmProvider,
    SendGridConfig,
    SendGridProvider,
    TwilioConfig,
    TwilioProvider,
)
from tests.support.emulators import (
    FcmEmulator,
    SendGridEmulator,
    ServiceAccount,
    TwilioEmulator,
    generate_service_account,
)
from tests.support.emulators.vonage import VonageEmulator
from tests.support.emulators.webhooks import WebhookKeys, webhook_keys
from tests.support.tls import TlsFiles, make_certificates
from tests.switchboard.hooks_support import Stack, stack

# Short enough to keep the suite quick, long enough for a loaded CI machine on loopback.
PROVIDER_TIMEOUT = 2.0
SENDER = "Switchboard <noreply@example.com>"
TWILIO_SENDER = "+15550001111"


@pytest.fixture(autouse=True)
def _loopback_without_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """All three SDKs honour proxy variables; the emulators are on loopback."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def sendgrid_emulator() -> Iterator[SendGridEmulator]:
    with SendGridEmulator() as emulator:
        yield emulator


@pytest.fixture
def sendgrid_config(sendgrid_emulator: SendGridEmulator) -> SendGridConfig:
    """Tests needing a variant use ``dataclasses.replace(sendgrid_config, ...)``."""
    return SendGridConfig(
        api_key=Secret(sendgrid_emulator.api_key),
        base_url=sendgrid_emulator.url,
        timeout=PROVIDER_TIMEOUT,
    )


@pytest.fixture
def sendgrid_provider(sendgrid_config: SendGridConfig) -> Iterator[SendGridProvider]:
    provider = SendGridProvider(sendgrid_config, sender=SENDER)
    yield provider
    provider.close()


@pytest.fixture
def twilio_emulator() -> Iterator[TwilioEmulator]:
    with TwilioEmulator() as emulator:
        yield emulator


@pytest.fixture
def twilio_config(twilio_emulator: TwilioEmulator) -> TwilioConfig:
    return TwilioConfig(
        account_sid=twilio_emulator.account_sid,
        auth_token=Secret(twilio_emulator.auth_token),
        from_number=TWILIO_SENDER,
        base_url=twilio_emulator.url,
        timeout=PROVIDER_TIMEOUT,
    )


@pytest.fixture
def twilio_provider(twilio_config: TwilioConfig) -> Iterator[TwilioProvider]:
    provider = TwilioProvider(twilio_config)
    yield provider
    provider.close()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a server certificate for the emulators that speak TLS (Vonage, SMTP)."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def vonage_emulator(certificates: TlsFiles) -> Iterator[VonageEmulator]:
    with VonageEmulator(tls=certificates.server_context()) as running:
        yield running


@pytest.fixture(scope="session")
def service_account() -> ServiceAccount:
    """One RSA key for the session: generating one takes about a tenth of a second."""
    return generate_service_account()


@pytest.fixture
def fcm_emulator(service_account: ServiceAccount) -> Iterator[FcmEmulator]:
    with FcmEmulator() as emulator:
        emulator.trust(service_account)
        yield emulator


@pytest.fixture
def fcm_config(fcm_emulator: FcmEmulator, service_account: ServiceAccount) -> FcmConfig:
    return FcmConfig(
        service_account_json=Secret(json.dumps(service_account.info(fcm_emulator.token_uri))),
        base_url=fcm_emulator.url,
        timeout=PROVIDER_TIMEOUT,
    )


@pytest.fixture
def fcm_provider(fcm_config: FcmConfig) -> Iterator[FcmProvider]:
    provider = FcmProvider(fcm_config)
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def keys() -> WebhookKeys:
    """A SendGrid Event Webhook key pair (the emulator signs with it, the receiver verifies)."""
    return webhook_keys()


@pytest.fixture
def s(
    redis_url: str, sendgrid_emulator: SendGridEmulator, twilio_emulator: TwilioEmulator, keys: WebhookKeys
) -> Iterator[Stack]:
    """A switchboard on the emulators, with its webhook receiver: sends, then the providers' events."""
    with stack(redis_url, sendgrid_emulator, twilio_emulator, keys) as built:
        yield built
