"""HttpClient: kept-alive connections, bounded answers, failures told apart by what the provider saw."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.backend.embedded import free_port
from switchboard.errors import AmbiguousProviderError, ProviderConfigurationError, TransientProviderError
from switchboard.providers.http import HttpClient
from switchboard.providers.loops import LoopThread
from tests.support.emulators import Reply, Scripted, SendGridEmulator
from tests.support.tls import make_certificates

SECRET = "do-not-leak-0123"


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread("test-http")
    yield thread
    thread.stop()


def client(timeout: float = 2.0, max_answer: int = 1 << 20) -> HttpClient:
    return HttpClient(
        "Test", timeout=timeout, safe=lambda text: text.replace(SECRET, "[redacted]"), max_answer=max_answer
    )


def test_sends_on_one_loop_share_one_kept_alive_connection(
    loop: LoopThread, sendgrid_emulator: SendGridEmulator
) -> None:
    http = client()
    for _ in range(20):
        answer = loop.run(http.post(sendgrid_emulator.url + "/v3/mail/send", headers={}, data=b"{}"))
        assert answer.status == 401
    assert sendgrid_emulator.connections == 1
    http.close()
    assert http.sessions == 0


def test_an_answer_over_the_bound_is_cut_off(loop: LoopThread, sendgrid_emulator: SendGridEmulator) -> None:
    sendgrid_emulator.script(Scripted(Reply(200, b'{"a": "' + b"x" * 300_000 + b'"}')))
    http = client(max_answer=100_000)
    answer = loop.run(http.post(sendgrid_emulator.url + "/v3/mail/send", headers={}, data=b"{}"))
    assert answer.status == 200 and answer.truncated
    assert len(answer.body) <= 100_000 and answer.json() is None
    http.close()


def test_a_compressed_answer_is_bounded_by_what_it_unpacks_to(
    loop: LoopThread, sendgrid_emulator: SendGridEmulator
) -> None:
    bomb = gzip.compress(b"0" * 20_000_000)  # ~20 KB on the wire, 20 MB unpacked
    sendgrid_emulator.script(Scripted(Reply(200, bomb, {"Content-Encoding": "gzip"})))
    http = client(max_answer=100_000)
    answer = loop.run(http.post(sendgrid_emulator.url + "/v3/mail/send", headers={}, data=b"{}"))
    assert answer.truncated and len(answer.body) <= 100_000
    http.close()


def test_a_refused_connection_never_sent_the_request(loop: LoopThread) -> None:
    http = client()
    with pytest.raises(TransientProviderError) as caught:
        loop.run(http.post(f"http://127.0.0.1:{free_port()}/x?key={SECRET}", headers={}, data=b"{}"))
    assert not isinstance(caught.value, AmbiguousProviderError)  # safe to fail over
    assert "Test unreachable" in str(caught.value)
    http.close()


def test_no_answer_after_sending_is_ambiguous(loop: LoopThread, sendgrid_emulator: SendGridEmulator) -> None:
    sendgrid_emulator.script(sendgrid_emulator.slow(2.0))
    http = client(timeout=0.2)
    with pytest.raises(AmbiguousProviderError) as caught:
        loop.run(http.post(sendgrid_emulator.url + "/v3/mail/send", headers={}, data=b"{}"))
    assert "timed out" in str(caught.value)
    http.close()


def test_an_untrusted_certificate_is_a_configuration_error(loop: LoopThread, tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path)
    with SendGridEmulator(tls=certificates.server_context()) as emulator:
        http = client()
        with pytest.raises(ProviderConfigurationError) as caught:
            loop.run(http.post(emulator.url + "/v3/mail/send", headers={}, data=b"{}"))
        assert "certificate not trusted" in str(caught.value)
        assert emulator.requests == []
        http.close()
