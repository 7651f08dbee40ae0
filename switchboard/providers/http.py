"""HTTP for the providers' async sends: one aiohttp session per event loop, connections kept alive.

The SDKs build the requests (SendGrid's ``Mail``, pyfcm's payload) but their HTTP stacks block
a thread per call and, for SendGrid, open a new connection per send. Here one session per
event loop keeps connections open across sends, so hundreds of sends in flight cost no
threads and almost no handshakes.

Failures are told apart by what the provider can have seen: a request that never left
(connection refused, connect timeout) raises TransientProviderError, safe to retry or to
send through another provider; one that went out and got no answer (read timeout, connection
cut) raises AmbiguousProviderError, since the provider may have acted on it. Answers are read
up to ``max_answer`` bytes: a provider's answer is small, and a larger one is cut off, not
buffered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from bus.safejson import read_json
from switchboard.errors import AmbiguousProviderError, ProviderConfigurationError, TransientProviderError

MAX_ANSWER = 1 << 20
"""Bytes of an answer read at most (1 MiB)."""
KEEPALIVE_SECONDS = 15.0
"""An idle connection is closed after this long, before a provider would hang up on it."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's HTTP answer: status, headers, and the body (``truncated`` when cut off)."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    truncated: bool = False

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (or was cut off)."""
        if self.truncated or not self.body:
            return None
        try:
            return read_json(self.body.decode("utf-8"))
        except (ValueError, TypeError, UnicodeDecodeError):
            return None

    def text(self, limit: int = 500) -> str:
        """The start of the body as text, for an error message."""
        return self.body[:limit].decode("utf-8", "replace")


class HttpClient:
    """One provider's HTTP: a kept-alive session per event loop, classified failures."""

    def __init__(self, provider: str, *, timeout: float, safe: Callable[[str], str], max_answer: int = MAX_ANSWER):
        self.provider = provider
        """The provider's display name, for error messages ("SendGrid")."""
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._seconds = timeout
        self._safe = safe
        self._max_answer = max_answer
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary()
        )
        self._proxies: dict[str, str | None] = {}

    async def post(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        data: bytes | Mapping[str, str],
    ) -> Answer:
        """POST once (never retried, never redirected); raise a ProviderError when no answer came."""
        name = self.provider
        try:
            post = self._session().post
            proxy = self._proxy(url)
            async with post(url, data=data, headers=dict(headers), allow_redirects=False, proxy=proxy) as response:
                body, truncated = await self._read(response)
                return Answer(response.status, response.reason or "", response.headers, body, truncated)
        except aiohttp.ClientConnectorCertificateError as exc:
            raise ProviderConfigurationError(self._safe(f"{name} certificate not trusted: {exc}")) from None
        except aiohttp.InvalidURL as exc:
            raise ProviderConfigurationError(self._safe(f"{name} URL unusable: {exc}")) from None
        except aiohttp.ClientConnectorError as exc:
            raise TransientProviderError(self._safe(f"{name} unreachable: {type(exc).__name__}: {exc}")) from None
        except aiohttp.ConnectionTimeoutError:
            raise TransientProviderError(self._safe(f"{name} unreachable: connect timed out")) from None
        except TimeoutError:
            # The request went out: the provider may have acted on it before the wait ran out.
            raise AmbiguousProviderError(
                self._safe(f"{name} did not answer: timed out after {self._seconds:g}s")
            ) from None
        except aiohttp.ClientError as exc:
            # A connection cut after the request went out is as ambiguous as a timeout.
            raise AmbiguousProviderError(self._safe(f"{name} did not answer: {type(exc).__name__}: {exc}")) from None

    def close(self) -> None:
        """Close every loop's session (on its own loop; a loop already closed took its connections)."""
        sessions = list(self._sessions.items())
        self._sessions.clear()
        for loop, session in sessions:
            if loop.is_closed() or session.closed:
                continue
            if not loop.is_running():
                loop.run_until_complete(session.close())
                continue
            closing = asyncio.run_coroutine_threadsafe(session.close(), loop)
            if not _on_loop(loop):
                # Best effort: the loop's end takes the sockets anyway.
                with contextlib.suppress(concurrent.futures.TimeoutError, aiohttp.ClientError, OSError):
                    closing.result(timeout=5)

    @property
    def sessions(self) -> int:
        """Sessions open (one per event loop that sent)."""
        return sum(1 for s in self._sessions.values() if not s.closed)

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            # No connection limit of its own: ``concurrency`` bounds the sends in flight.
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS, ttl_dns_cache=300)
            session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._sessions[loop] = session
        return session

    def _proxy(self, url: str) -> str | None:
        """The proxy for ``url`` from the environment (``HTTPS_PROXY``, ``NO_PROXY``), as the SDKs'
        requests sessions honour them; looked up once per host (aiohttp's ``trust_env`` reads the
        environment and the netrc file on every request)."""
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._proxies:
            proxy = urllib.request.getproxies().get(parts.scheme)
            bypass = parts.hostname is None or urllib.request.proxy_bypass(parts.hostname)
            self._proxies[origin] = None if bypass else proxy
        return self._proxies[origin]

    async def _read(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        """The body, at most ``max_answer`` bytes of it (the rest is left unread: the connection closes)."""
        length = response.content_length
        if length is not None and length <= self._max_answer and "Content-Encoding" not in response.headers:
            # The usual answer, read in one await: aiohttp reads no more than the length announced
            # (a compressed one could unpack to any size: it is read chunk by chunk, below).
            return await response.read(), False
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_answer:
                return b"".join(chunks), True
            chunks.append(chunk)
        return b"".join(chunks), False


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
