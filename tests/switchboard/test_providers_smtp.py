"""SmtpProvider: aiosmtplib against a real SMTP server in the process (aiosmtpd), over STARTTLS with AUTH."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from bus.settings_loader import Secret
from switchboard.errors import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderConfigurationError,
    SettingsError,
    TransientProviderError,
)
from switchboard.providers import EmailMessage, EmailResult, SmtpConfig, SmtpProvider, SmtpSecurity
from tests.support.emulators.smtp import PASSWORD, USERNAME, Answer, SmtpServer
from tests.support.tls import TlsFiles

SENDER = "Switchboard <noreply@example.com>"
HELLO = EmailMessage(to=["ada@example.com"], subject="Hello", text="Hi Ada")


@pytest.fixture
def server(certificates: TlsFiles) -> Iterator[SmtpServer]:
    with SmtpServer(certificates) as relay:
        yield relay


@pytest.fixture
def config(server: SmtpServer, certificates: TlsFiles) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1",
        port=server.port,
        username=USERNAME,
        password=Secret(PASSWORD),
        ca_file=certificates.ca_file,
        timeout=2.0,
        local_hostname="worker.test",
    )


@pytest.fixture
def provider(config: SmtpConfig) -> Iterator[SmtpProvider]:
    smtp = SmtpProvider(config, sender=SENDER)
    yield smtp
    smtp.close()


def _provider(config: SmtpConfig, **changes: object) -> SmtpProvider:
    return SmtpProvider(replace(config, **changes), sender=SENDER)  # type: ignore[arg-type]


def test_a_full_email_arrives_over_starttls_with_auth(provider: SmtpProvider, server: SmtpServer) -> None:
    unsubscribe = "<https://example.com/unsubscribe/t0k3n>"
    result = provider.send(
        EmailMessage(
            to=["Ada Lovelace <ada@example.com>"],
            cc=["charles@example.com"],
            bcc=["audit@example.com"],
            reply_to="help@example.com",
            subject="Votre commande expédiée ✓",
            text="Bonjour Ada, c'est parti.",
            html="<p>Bonjour <b>Ada</b></p>",
            headers={"List-Unsubscribe": unsubscribe, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        )
    )

    [received] = server.messages
    assert received.tls and received.authenticated
    assert received.mail_from == "noreply@example.com"
    assert received.rcpt_tos == ("ada@example.com", "charles@example.com", "audit@example.com")
    mail = received.message
    assert mail["From"] == SENDER
    assert mail["To"] == "Ada Lovelace <ada@example.com>"
    assert mail["Cc"] == "charles@example.com"
    assert mail["Bcc"] is None  # blind copies go in the envelope only
    assert mail["Reply-To"] == "help@example.com"
    assert mail["Subject"] == "Votre commande expédiée ✓"
    assert mail["List-Unsubscribe"] == unsubscribe
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Message-ID"] == result.message_id
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.iter_parts()
    assert text.get_content().strip() == "Bonjour Ada, c'est parti."
    assert html.get_content_type() == "text/html" and "<b>Ada</b>" in html.get_content()
    assert all(byte < 128 for byte in received.content)  # 7-bit on the wire: any relay takes it
    assert (result.provider, result.status) == ("smtp", "accepted")


def test_html_only_and_the_message_sender(provider: SmtpProvider, server: SmtpServer) -> None:
    provider.send(
        EmailMessage(to=["ada@example.com"], subject="s", html="<p>only html</p>", from_email="billing@example.com")
    )
    [received] = server.messages
    assert received.mail_from == "billing@example.com"
    assert received.message.get_content_type() == "text/html"


def test_connections_are_reused_up_to_the_message_cap(config: SmtpConfig, server: SmtpServer) -> None:
    provider = _provider(config, max_messages_per_connection=2)
    for _ in range(5):
        provider.send(HELLO)
    provider.close()
    peers = [m.peer for m in server.messages]
    assert peers[0] == peers[1] and peers[2] == peers[3] and peers[1] != peers[2] != peers[4]
    assert server.connections == 3
    assert server.logins == ["PLAIN"] * 3  # AUTH once per connection, never per message


def test_concurrent_sends_stay_within_max_connections(config: SmtpConfig, server: SmtpServer) -> None:
    provider = _provider(config, max_connections=2)
    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(lambda _: provider.send(HELLO).message_id, range(12)))
    provider.close()
    assert len(set(ids)) == 12 and len(server.messages) == 12
    assert server.connections <= 2


def test_a_connection_the_relay_closed_while_idle_is_replaced(provider: SmtpProvider, server: SmtpServer) -> None:
    provider.send(HELLO)
    server.script("MAIL", Answer("421 4.4.2 relay.test Error: timeout exceeded", hang_up=True))
    provider.send(HELLO)  # the pooled connection fails at MAIL FROM, before anything was sent
    assert len(server.messages) == 2
    assert server.connections == 2


def test_one_refused_recipient_is_named_and_the_others_get_the_email(
    provider: SmtpProvider, server: SmtpServer
) -> None:
    server.refuse("gone@example.com", "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown")
    result = provider.send(EmailMessage(to=["ada@example.com", "gone@example.com"], subject="s", text="t"))
    assert isinstance(result, EmailResult) and result.status == "partial"
    assert result.suppress == ("gone@example.com",)
    [refusal] = result.refused
    assert isinstance(refusal.error, PermanentProviderError) and refusal.error.status == 550
    assert "gone@example.com" not in str(refusal.error) and "g***@example.com" in str(refusal.error)
    assert server.messages[0].rcpt_tos == ("ada@example.com",)


def test_every_recipient_refused_is_permanent_and_names_them(provider: SmtpProvider, server: SmtpServer) -> None:
    server.refuse("a@example.com", "550 5.1.1 User unknown")
    server.refuse("b@example.com", "553 5.1.3 Bad recipient address syntax")
    with pytest.raises(PermanentProviderError) as caught:
        provider.send(EmailMessage(to=["a@example.com", "b@example.com"], subject="s", text="t"))
    assert caught.value.recipient_problem and caught.value.recipients == ("a@example.com", "b@example.com")
    assert server.messages == []
    provider.send(HELLO)  # RSET left the connection usable
    assert server.connections == 1


def test_a_greylisted_recipient_is_transient(provider: SmtpProvider, server: SmtpServer) -> None:
    server.refuse("ada@example.com", "450 4.2.0 <ada@example.com>: Recipient address rejected: Greylisted")
    with pytest.raises(TransientProviderError) as caught:
        provider.send(HELLO)
    assert caught.value.status == 450 and not isinstance(caught.value, AmbiguousProviderError)


def test_refusals_of_both_kinds_for_every_recipient_are_transient(provider: SmtpProvider, server: SmtpServer) -> None:
    server.refuse("a@example.com", "550 5.1.1 User unknown")
    server.refuse("b@example.com", "452 4.2.2 Mailbox full")
    with pytest.raises(TransientProviderError):
        provider.send(EmailMessage(to=["a@example.com", "b@example.com"], subject="s", text="t"))


def test_421_and_hang_up_at_rcpt_is_transient_and_the_next_send_reconnects(
    provider: SmtpProvider, server: SmtpServer
) -> None:
    server.script("RCPT", Answer("421 4.7.0 relay.test closing: too many errors", hang_up=True))
    with pytest.raises(TransientProviderError) as caught:
        provider.send(HELLO)
    assert caught.value.status == 421
    provider.send(HELLO)
    assert len(server.messages) == 1 and server.connections == 2


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("554 5.7.1 Message rejected as spam", PermanentProviderError),
        ("451 4.3.0 Temporary local problem", TransientProviderError),
    ],
)
def test_data_refusals(provider: SmtpProvider, server: SmtpServer, reply: str, kind: type[Exception]) -> None:
    server.script("DATA", Answer(reply))
    with pytest.raises(kind) as caught:
        provider.send(HELLO)
    assert not getattr(caught.value, "recipient_problem", False)
    assert not isinstance(caught.value, AmbiguousProviderError)


def test_a_refused_sender_stops_that_sender_only(provider: SmtpProvider, server: SmtpServer) -> None:
    server.script("MAIL", Answer("550 5.7.1 Sender address rejected: not owned by user"))
    with pytest.raises(ProviderConfigurationError) as caught:
        provider.send(HELLO)
    assert caught.value.sender == "noreply@example.com" and "MAIL FROM" in str(caught.value)


def test_a_wrong_password_is_a_configuration_error_that_never_shows_it(
    config: SmtpConfig, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-password-must-not-leak-42"
    provider = _provider(config, password=Secret(wrong))
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderConfigurationError) as caught:
        provider.send(HELLO)
    provider.close()
    assert caught.value.status == 535
    everything = str(caught.value) + repr(caught.value) + caplog.text
    assert wrong not in everything and PASSWORD not in everything


def test_a_temporary_auth_failure_is_transient(provider: SmtpProvider, server: SmtpServer) -> None:
    # aiosmtplib tries each offered mechanism (PLAIN, then LOGIN); the relay refuses both.
    server.script("AUTH", *[Answer("454 4.7.0 Temporary authentication failure")] * 2)
    with pytest.raises(TransientProviderError) as caught:
        provider.send(HELLO)
    assert caught.value.status == 454


def test_an_untrusted_certificate_is_a_configuration_error(config: SmtpConfig, server: SmtpServer) -> None:
    provider = _provider(config, ca_file=None)
    with pytest.raises(ProviderConfigurationError, match="certificate"):
        provider.send(HELLO)
    provider.close()
    assert server.messages == []


def test_starttls_is_never_skipped_when_the_relay_does_not_offer_it(certificates: TlsFiles, config: SmtpConfig) -> None:
    with SmtpServer(certificates, tls="none", auth=False) as plain:
        provider = _provider(config, port=plain.port, username=None, password=None)
        with pytest.raises(ProviderConfigurationError, match="STARTTLS"):
            provider.send(HELLO)
        provider.close()
        assert plain.messages == []


def test_implicit_tls(certificates: TlsFiles, config: SmtpConfig) -> None:
    with SmtpServer(certificates, tls="ssl") as relay:
        provider = _provider(config, port=relay.port, security=SmtpSecurity.SSL)
        provider.send(HELLO)
        provider.close()
        assert relay.messages[0].tls and relay.messages[0].authenticated


def test_a_relay_that_is_down_is_transient_and_not_ambiguous(config: SmtpConfig) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    provider = _provider(config, port=closed_port)
    with pytest.raises(TransientProviderError) as caught:
        provider.send(HELLO)
    provider.close()
    assert not isinstance(caught.value, AmbiguousProviderError)


def test_no_answer_after_data_is_ambiguous(config: SmtpConfig, server: SmtpServer) -> None:
    provider = _provider(config, timeout=0.3)
    server.script("DATA", Answer("250 OK", delay=5))
    with pytest.raises(AmbiguousProviderError):
        provider.send(HELLO)
    server.release()
    provider.close()


def test_no_answer_to_rcpt_is_transient_but_not_ambiguous(config: SmtpConfig, server: SmtpServer) -> None:
    provider = _provider(config, timeout=0.3)
    server.script("RCPT", Answer("250 OK", delay=5))
    with pytest.raises(TransientProviderError) as caught:
        provider.send(HELLO)
    assert not isinstance(caught.value, AmbiguousProviderError)
    server.release()
    provider.close()


def test_addresses_outside_ascii_are_refused_without_suppressing_anyone(
    provider: SmtpProvider, server: SmtpServer
) -> None:
    result = provider.send(EmailMessage(to=["ada@example.com", "josé@exämple.com"], subject="s", text="t"))
    assert isinstance(result, EmailResult) and result.suppress == ()
    assert [r.recipient for r in result.refused] == ["josé@exämple.com"]
    assert server.messages[0].rcpt_tos == ("ada@example.com",)
    with pytest.raises(PermanentProviderError) as caught:
        provider.send(EmailMessage(to=["josé@exämple.com"], subject="s", text="t"))
    assert (caught.value.recipient_problem, caught.value.recipients) == (False, ())


def test_a_header_with_a_line_break_is_refused_before_sending(provider: SmtpProvider, server: SmtpServer) -> None:
    with pytest.raises(PermanentProviderError):
        provider.send(EmailMessage(to=["ada@example.com"], subject="s", text="t", headers={"X-Tag": "a\r\nBcc: x@y"}))
    assert server.messages == []


def test_settings_refuse_a_password_in_clear_to_a_remote_relay(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="in clear"):
        SmtpConfig(host="smtp.example.com", username="u", password=Secret("p"), security=SmtpSecurity.NONE)
    SmtpConfig(host="127.0.0.1", username="u", password=Secret("p"), security=SmtpSecurity.NONE)  # a local relay
    with pytest.raises(SettingsError, match="both"):
        SmtpConfig(host="smtp.example.com", username="u")
