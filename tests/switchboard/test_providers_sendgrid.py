"""SendGridProvider: the sendgrid SDK's Mail helper and our HTTP client against the SendGrid emulator."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from python_http_client.exceptions import BadRequestsError
from sendgrid import SendGridAPIClient

from bus.settings_loader import Secret
from switchboard.errors import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderConfigurationError,
    TransientProviderError,
)
from switchboard.providers import EmailMessage, SendGridConfig, SendGridProvider
from tests.support.emulators import Reply, Scripted, SendGridEmulator
from tests.switchboard.conftest import SENDER

WELCOME = EmailMessage(to=["ada@example.com"], subject="Welcome", text="Hello Ada", html="<p>Hello Ada</p>")


def test_send_posts_the_mail_with_the_bearer_key(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    message = EmailMessage(
        to=["ada@example.com", "Bob <bob@example.com>"],
        cc=["carol@example.com"],
        bcc=["audit@example.com"],
        reply_to="support@example.com",
        subject="Welcome",
        text="Hello",
        html="<p>Hello</p>",
        headers={"X-Switchboard-Id": "ev-1"},
        categories=["welcome"],
    )
    result = sendgrid_provider.send(message)

    [request] = sendgrid_emulator.requests
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.header("authorization") == f"Bearer {sendgrid_emulator.api_key}"
    assert request.json == {
        "from": {"name": "Switchboard", "email": "noreply@example.com"},
        "subject": "Welcome",
        "personalizations": [
            {
                "to": [{"email": "ada@example.com"}, {"name": "Bob", "email": "bob@example.com"}],
                "cc": [{"email": "carol@example.com"}],
                "bcc": [{"email": "audit@example.com"}],
            }
        ],
        "content": [{"type": "text/plain", "value": "Hello"}, {"type": "text/html", "value": "<p>Hello</p>"}],
        "headers": {"X-Switchboard-Id": "ev-1"},
        "categories": ["welcome"],
        "reply_to": {"email": "support@example.com"},
    }
    assert result.provider == "sendgrid"
    assert result.message_id and len(result.message_id) == 22


def test_sends_share_kept_alive_connections(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    """The SDK's own client said ``Connection: close``: a TCP (in production TLS) handshake per send."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(lambda _: sendgrid_provider.send(WELCOME).message_id, range(100)))
    assert len(set(ids)) == 100
    assert sendgrid_emulator.connections <= 4


def test_message_id_comes_from_the_x_message_id_header(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    sendgrid_emulator.script(Scripted(Reply(202, b"", {"X-Message-Id": "abcDEF123"})))
    assert sendgrid_provider.send(WELCOME).message_id == "abcDEF123"


def test_the_message_sender_overrides_the_configured_one(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    sendgrid_provider.send(EmailMessage(to=["ada@example.com"], subject="s", text="t", from_email="ops@example.com"))
    assert sendgrid_emulator.requests[0].json["from"] == {"email": "ops@example.com"}


def test_address_sendgrid_rejects_is_a_recipient_problem(sendgrid_provider: SendGridProvider) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        sendgrid_provider.send(EmailMessage(to=["ada@example.com", "ada@localhost"], subject="s", text="t"))
    assert caught.value.status == 400
    assert caught.value.recipient_problem is True
    assert "personalizations.0.to.1.email" in str(caught.value)


def test_address_the_sdk_cannot_parse_is_refused_before_sending(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        sendgrid_provider.send(EmailMessage(to=["ada.example.com"], subject="s", text="t"))
    assert caught.value.recipient_problem is True
    assert sendgrid_emulator.requests == []


def test_duplicate_recipient_is_permanent_but_not_a_recipient_problem(sendgrid_provider: SendGridProvider) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        sendgrid_provider.send(EmailMessage(to=["ada@example.com"], cc=["ada@example.com"], subject="s", text="t"))
    assert caught.value.recipient_problem is False
    assert "unique between to, cc, and bcc" in str(caught.value)


@pytest.mark.parametrize("status", [400, 404, 413])
def test_other_client_errors_are_permanent(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator, status: int
) -> None:
    sendgrid_emulator.script(sendgrid_emulator.error(status))
    with pytest.raises(PermanentProviderError) as caught:
        sendgrid_provider.send(WELCOME)
    assert caught.value.status == status
    assert caught.value.recipient_problem is False


def test_emulator_requires_personalizations_and_from(sendgrid_emulator: SendGridEmulator) -> None:
    """The SDK's raw dict path, to reach the emulator's checks the Mail helper never fails."""
    client = SendGridAPIClient(api_key=sendgrid_emulator.api_key, host=sendgrid_emulator.url)
    content = [{"type": "text/plain", "value": "t"}]
    with pytest.raises(BadRequestsError) as missing_personalizations:
        client.send({"from": {"email": "a@example.com"}, "subject": "s", "content": content})
    with pytest.raises(BadRequestsError) as missing_from:
        client.send({"personalizations": [{"to": [{"email": "b@example.com"}]}], "subject": "s", "content": content})
    assert missing_personalizations.value.to_dict["errors"][0]["field"] == "personalizations"
    assert missing_from.value.to_dict["errors"][0]["field"] == "from.email"


def test_wrong_key_is_a_configuration_error_that_never_shows_the_key(sendgrid_config: SendGridConfig) -> None:
    wrong_key = "SG.wrong-key-0123456789.do-not-leak-this-secret"
    provider = SendGridProvider(replace(sendgrid_config, api_key=Secret(wrong_key)), sender=SENDER)
    with pytest.raises(ProviderConfigurationError) as caught:
        provider.send(WELCOME)
    assert caught.value.status == 401
    assert "authorization grant is invalid" in str(caught.value)
    for text in (str(caught.value), repr(caught.value)):
        assert wrong_key not in text
        assert "do-not-leak" not in text


def test_forbidden_is_a_configuration_error(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    sendgrid_emulator.script(sendgrid_emulator.error(403))
    with pytest.raises(ProviderConfigurationError):
        sendgrid_provider.send(WELCOME)


def test_rate_limit_waits_until_x_ratelimit_reset(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    sendgrid_emulator.script(sendgrid_emulator.rate_limited(reset_in=30))
    with pytest.raises(TransientProviderError) as caught:
        sendgrid_provider.send(WELCOME)
    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert 28 <= caught.value.retry_after <= 30
    assert len(sendgrid_emulator.requests) == 1


def test_rate_limit_honours_retry_after(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    sendgrid_emulator.script(sendgrid_emulator.error(429, retry_after=12))
    with pytest.raises(TransientProviderError) as caught:
        sendgrid_provider.send(WELCOME)
    assert caught.value.retry_after == 12


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator, status: int
) -> None:
    sendgrid_emulator.script(sendgrid_emulator.error(status))
    with pytest.raises(TransientProviderError) as caught:
        sendgrid_provider.send(WELCOME)
    assert caught.value.status == status
    assert len(sendgrid_emulator.requests) == 1


def test_the_next_send_succeeds_after_a_scripted_failure(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    sendgrid_emulator.script(sendgrid_emulator.error(503))
    with pytest.raises(TransientProviderError):
        sendgrid_provider.send(WELCOME)
    assert sendgrid_provider.send(WELCOME).message_id
    assert len(sendgrid_emulator.requests) == 2


def test_stopped_server_is_a_transient_network_error(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    sendgrid_emulator.stop()
    with pytest.raises(TransientProviderError) as caught:
        sendgrid_provider.send(WELCOME)
    assert caught.value.status is None
    assert not isinstance(caught.value, AmbiguousProviderError)  # nothing went out: failing over is safe
    assert sendgrid_emulator.api_key not in str(caught.value)


def test_dropped_connection_is_transient(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    sendgrid_emulator.script(sendgrid_emulator.drop())
    with pytest.raises(AmbiguousProviderError):  # the email went out before the cut
        sendgrid_provider.send(WELCOME)
    assert len(sendgrid_emulator.requests) == 1


def test_slow_answer_times_out(sendgrid_config: SendGridConfig, sendgrid_emulator: SendGridEmulator) -> None:
    provider = SendGridProvider(replace(sendgrid_config, timeout=0.2), sender=SENDER)
    sendgrid_emulator.script(sendgrid_emulator.slow(2.0))
    started = time.monotonic()
    with pytest.raises(AmbiguousProviderError) as caught:
        provider.send(WELCOME)
    assert time.monotonic() - started < 1.5
    assert "timed out" in str(caught.value)


def test_sdk_refusing_a_body_with_an_api_key_sends_nothing(
    sendgrid_provider: SendGridProvider, sendgrid_emulator: SendGridEmulator
) -> None:
    leaked = "SG.abcdefghijklmnop.qrstuvwxyz0123456789"
    with pytest.raises(PermanentProviderError) as caught:
        sendgrid_provider.send(EmailMessage(to=["ada@example.com"], subject="s", text=leaked))
    assert leaked not in str(caught.value)
    assert sendgrid_emulator.requests == []
