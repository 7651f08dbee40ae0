"""FcmProvider: pyfcm's messages, google-auth's tokens and our HTTP client against the FCM emulator."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bus.settings_loader import Secret
from switchboard.errors import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderConfigurationError,
    TransientProviderError,
)
from switchboard.providers import FcmConfig, FcmProvider, PushMessage
from tests.support.emulators import FcmEmulator, ServiceAccount, generate_service_account
from tests.support.emulators.fcm import JWT_BEARER

PING = PushMessage(tokens=["tok-a"], title="Hello", body="Ada")


def test_send_uses_a_token_from_the_oauth_endpoint(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    message = PushMessage(
        tokens=["tok-a"], title="Hello", body="Ada", data={"order": "42"}, image="https://example.com/a.png"
    )
    result = fcm_provider.send(message)

    [token_request] = fcm_emulator.requests_to("token")
    assert token_request.form_value("grant_type") == JWT_BEARER
    [send] = fcm_emulator.requests_to("send")
    assert (send.method, send.path) == ("POST", "/v1/projects/switchboard-emulator/messages:send")
    assert send.bearer in fcm_emulator.issued_tokens
    assert send.json == {
        "message": {
            "token": "tok-a",
            "notification": {"title": "Hello", "body": "Ada", "image": "https://example.com/a.png"},
            "data": {"order": "42"},
        },
        "validate_only": False,
    }
    assert result.message_id is not None
    assert result.message_id.startswith("projects/switchboard-emulator/messages/0:")
    assert result.delivered == ("tok-a",)


def test_the_token_is_fetched_once_for_many_sends(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    for _ in range(3):
        fcm_provider.send(PING)
    assert len(fcm_emulator.requests_to("token")) == 1
    assert len(fcm_emulator.requests_to("send")) == 3


def test_concurrent_sends_share_one_token_and_connections(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    """Stock pyfcm keeps a session and a token per thread: each worker thread cost a token fetch."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: fcm_provider.send(PING), range(100)))
    assert all(r.delivered == ("tok-a",) for r in results)
    assert len(fcm_emulator.requests_to("send")) == 100
    assert len(fcm_emulator.requests_to("token")) == 1
    assert fcm_emulator.connections <= 1 + 4  # google-auth's token fetch, then kept-alive sends


def test_topic_message(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    result = fcm_provider.send(PushMessage(topic="news", title="Extra"))
    assert fcm_emulator.requests_to("send")[0].json["message"] == {"topic": "news", "notification": {"title": "Extra"}}
    assert result.delivered == ("news",)


def test_service_account_file(fcm_emulator: FcmEmulator, service_account: ServiceAccount, tmp_path: Path) -> None:
    path = tmp_path / "account.json"
    path.write_text(json.dumps(service_account.info("https://oauth2.googleapis.com/token")))
    provider = FcmProvider(
        FcmConfig(service_account_file=path, token_uri=fcm_emulator.token_uri, base_url=fcm_emulator.url)
    )
    assert provider.send(PING).message_id
    provider.close()


def test_an_assertion_signed_by_another_key_is_refused(
    fcm_emulator: FcmEmulator, service_account: ServiceAccount
) -> None:
    """Same account e-mail, different private key: the emulator checks the JWT's signature."""
    impostor = generate_service_account(service_account.project_id)
    forged = {**impostor.info(fcm_emulator.token_uri), "client_email": service_account.client_email}
    forged["private_key_id"] = service_account.private_key_id
    provider = FcmProvider(FcmConfig(service_account_json=Secret(json.dumps(forged)), base_url=fcm_emulator.url))
    with pytest.raises(ProviderConfigurationError) as caught:
        provider.send(PING)
    assert "Invalid JWT Signature" in str(caught.value)
    for text in (str(caught.value), repr(caught.value)):
        assert impostor.private_key_pem not in text
        assert "PRIVATE KEY" not in text
    assert len(fcm_emulator.requests_to("token")) == 1
    assert fcm_emulator.requests_to("send") == []
    provider.close()


def test_unregistered_tokens_are_reported_for_suppression(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    fcm_emulator.unregister("tok-b")
    result = fcm_provider.send(PushMessage(tokens=["tok-a", "tok-b", "tok-c"], title="Hi"))
    assert [r.json["message"]["token"] for r in fcm_emulator.requests_to("send")] == ["tok-a", "tok-b", "tok-c"]
    assert result.delivered == ("tok-a", "tok-c")
    assert result.unregistered == ("tok-b",)
    assert result.retry_targets == ()
    assert result.status == "partial"


def test_a_single_unregistered_token_raises_a_recipient_problem(
    fcm_provider: FcmProvider, fcm_emulator: FcmEmulator
) -> None:
    fcm_emulator.unregister("tok-a")
    with pytest.raises(PermanentProviderError) as caught:
        fcm_provider.send(PING)
    assert (caught.value.status, caught.value.code, caught.value.recipient_problem) == (404, "UNREGISTERED", True)


def test_all_tokens_gone_raises_one_recipient_problem(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    fcm_emulator.unregister("tok-a")
    fcm_emulator.set_token_error("tok-b", "SENDER_ID_MISMATCH")
    with pytest.raises(PermanentProviderError) as caught:
        fcm_provider.send(PushMessage(tokens=["tok-a", "tok-b"], title="Hi"))
    assert caught.value.recipient_problem is True
    assert len(fcm_emulator.requests_to("send")) == 2


def test_a_malformed_token_is_a_recipient_problem(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    fcm_emulator.set_token_error("tok-a", "INVALID_ARGUMENT")
    with pytest.raises(PermanentProviderError) as caught:
        fcm_provider.send(PING)
    assert (caught.value.status, caught.value.code, caught.value.recipient_problem) == (400, "INVALID_ARGUMENT", True)


def test_a_bad_payload_is_permanent_and_stops_the_fan_out(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    bad_data: Any = {"count": 3}  # FCM wants strings; the type says so, a caller may not
    with pytest.raises(PermanentProviderError) as caught:
        fcm_provider.send(PushMessage(tokens=["tok-a", "tok-b"], title="Hi", data=bad_data))
    assert (caught.value.status, caught.value.code, caught.value.recipient_problem) == (400, "INVALID_ARGUMENT", False)
    assert "message.data[0].value" in str(caught.value)
    assert len(fcm_emulator.requests_to("send")) == 1


def test_an_expired_access_token_is_transient_and_refreshed_next_time(
    fcm_provider: FcmProvider, fcm_emulator: FcmEmulator
) -> None:
    fcm_provider.send(PING)
    fcm_emulator.expire_tokens()
    with pytest.raises(TransientProviderError) as caught:
        fcm_provider.send(PING)
    assert (caught.value.status, caught.value.retry_after) == (401, 0)
    fcm_provider.send(PING)
    assert len(fcm_emulator.requests_to("token")) == 2
    assert len(fcm_emulator.requests_to("send")) == 3


def test_rejected_credentials_are_a_configuration_error_without_secrets(
    fcm_provider: FcmProvider, fcm_emulator: FcmEmulator, service_account: ServiceAccount
) -> None:
    fcm_emulator.script(fcm_emulator.error(401))
    with pytest.raises(ProviderConfigurationError) as caught:
        fcm_provider.send(PING)
    [access_token] = fcm_emulator.issued_tokens
    for text in (str(caught.value), repr(caught.value)):
        assert access_token not in text
        assert service_account.private_key_pem not in text
        assert "PRIVATE KEY" not in text


def test_permission_denied_is_a_configuration_error(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    fcm_emulator.script(fcm_emulator.error(403, error_code=None, message="Permission denied"))
    with pytest.raises(ProviderConfigurationError):
        fcm_provider.send(PING)


def test_rate_limit_is_one_request_and_no_sleep(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    """Stock pyfcm would sleep 30 s here and send again; the provider reports the wait instead."""
    fcm_emulator.script(fcm_emulator.error(429, retry_after=30))
    started = time.monotonic()
    with pytest.raises(TransientProviderError) as caught:
        fcm_provider.send(PING)
    assert time.monotonic() - started < 5
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (429, "QUOTA_EXCEEDED", 30)
    assert len(fcm_emulator.requests_to("send")) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_one_request(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator, status: int) -> None:
    """Stock pyfcm's adapter retries 502/503 up to ten times."""
    fcm_emulator.script(fcm_emulator.error(status))
    with pytest.raises(TransientProviderError) as caught:
        fcm_provider.send(PING)
    assert caught.value.status == status
    assert len(fcm_emulator.requests_to("send")) == 1


def test_dropped_connection_is_one_request(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    fcm_emulator.script(fcm_emulator.drop())
    with pytest.raises(AmbiguousProviderError):
        fcm_provider.send(PING)
    assert len(fcm_emulator.requests_to("send")) == 1


def test_slow_answer_times_out_once(fcm_config: FcmConfig, fcm_emulator: FcmEmulator) -> None:
    provider = FcmProvider(replace(fcm_config, timeout=0.3))
    provider.send(PING)  # the token fetch is not what this test times
    fcm_emulator.script(fcm_emulator.slow(2.0))
    started = time.monotonic()
    with pytest.raises(AmbiguousProviderError) as caught:
        provider.send(PING)
    assert time.monotonic() - started < 1.5
    assert "timed out" in str(caught.value)
    assert len(fcm_emulator.requests_to("send")) == 2
    provider.close()


def test_a_transient_failure_stops_the_fan_out(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    fcm_emulator.script(fcm_emulator.slow(0), fcm_emulator.error(503, retry_after=5))
    result = fcm_provider.send(PushMessage(tokens=["tok-a", "tok-b", "tok-c"], title="Hi"))
    assert result.delivered == ("tok-a",)
    assert result.retry_targets == ("tok-b", "tok-c")
    assert result.retry_after == 5
    assert len(fcm_emulator.requests_to("send")) == 2


def test_stopped_server_is_a_transient_network_error(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    fcm_provider.send(PING)
    fcm_emulator.stop()
    with pytest.raises(TransientProviderError) as caught:
        fcm_provider.send(PING)
    assert caught.value.status is None
    assert not isinstance(caught.value, AmbiguousProviderError)


def test_unreachable_token_endpoint_is_transient(fcm_provider: FcmProvider, fcm_emulator: FcmEmulator) -> None:
    fcm_emulator.stop()
    with pytest.raises(TransientProviderError) as caught:
        fcm_provider.send(PING)
    assert "token endpoint" in str(caught.value)


def test_push_message_needs_exactly_one_kind_of_target() -> None:
    with pytest.raises(ValueError):
        PushMessage(tokens=["tok-a"], topic="news", title="Hi")
    with pytest.raises(ValueError):
        PushMessage(title="Hi")
