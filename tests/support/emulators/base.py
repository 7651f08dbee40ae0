"""What the provider emulators share: a threaded loopback HTTP server that records every
request and answers from a per-test script before falling back to the emulated API.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import socketserver
import ssl
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it; header names are lower-cased.

    ``peer`` is the client's address: two requests with the same one shared a connection;
    ``at`` is when it arrived (``time.monotonic()``), to measure the rate a sender keeps.
    """

    endpoint: str
    peer: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, list[str]] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def form_value(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None

    @property
    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer`` header."""
        scheme, _, token = (self.header("authorization") or "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """The (user, password) of an ``Authorization: Basic`` header."""
        scheme, _, encoded = (self.header("authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return (user, password) if sep else None


@dataclass(frozen=True)
class Reply:
    """An HTTP answer."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


@dataclass(frozen=True)
class Scripted:
    """One queued answer: a fixed ``reply``, else the API's normal answer; after ``delay``
    seconds; or, with ``drop``, the connection closed without any answer."""

    reply: Reply | None = None
    delay: float = 0.0
    drop: bool = False


class Emulator(ABC):
    """Base of the provider emulators: start/stop, the request log and the response script."""

    #: The endpoint scripts apply to unless told otherwise.
    main_endpoint = "send"

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, verbose: bool = False, tls: ssl.SSLContext | None = None
    ) -> None:
        self._address = (host, port)
        self.tls = tls
        """A server context: the emulator speaks https (e.g. for an SDK that knows no other scheme)."""
        self.verbose = verbose
        self.latency = 0.0
        """Seconds every unscripted answer waits, as a real provider's API takes time."""
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._scripts: dict[str, deque[Scripted]] = defaultdict(deque)
        self._connections = 0
        self._in_flight = 0
        self._peak_in_flight = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- the emulated API, defined by each emulator -------------------------------------
    @abstractmethod
    def route(self, method: str, path: str) -> str | None:
        """The endpoint name for a request line, None when the API has no such route."""

    @abstractmethod
    def respond(self, endpoint: str, request: RecordedRequest) -> Reply:
        """The API's normal answer to a request on one of its endpoints."""

    @abstractmethod
    def error(self, status: int, *, retry_after: float | None = None) -> Scripted:
        """A scripted failure with the API's own error body for ``status``."""

    def not_found(self, request: RecordedRequest) -> Reply:
        return Reply.json(404, {"error": f"no route for {request.method} {request.path}"})

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stopping.clear()
        self._server = _Server(self._address, self)
        # A short poll interval keeps stop() quick (it waits for one poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (kept-alive ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give the SDK (no trailing slash)."""
        return f"{'https' if self.tls else 'http'}://{self._address[0]}:{self.port}"

    # -- what tests use ----------------------------------------------------------------
    def script(self, *answers: Scripted, endpoint: str | None = None) -> None:
        """Queue the next answers of ``endpoint`` (default: the send endpoint), in order."""
        with self._lock:
            self._scripts[endpoint or self.main_endpoint].extend(answers)

    def slow(self, seconds: float) -> Scripted:
        """The normal answer, ``seconds`` late."""
        return Scripted(delay=seconds)

    def drop(self) -> Scripted:
        """Close the connection after reading the request, without answering."""
        return Scripted(drop=True)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (kept-alive ones count once)."""
        with self._lock:
            return self._connections

    @property
    def peak_in_flight(self) -> int:
        """The most requests being answered at once so far (how many a client kept in flight)."""
        with self._lock:
            return self._peak_in_flight

    def requests_to(self, endpoint: str | None = None) -> list[RecordedRequest]:
        name = endpoint or self.main_endpoint
        return [r for r in self.requests if r.endpoint == name]

    def reset(self) -> None:
        """Forget received requests, pending scripts and the connection count."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()
            self._connections = 0
            self._peak_in_flight = 0

    # -- used by the server and the request handler -------------------------------------
    def _connected(self) -> None:
        with self._lock:
            self._connections += 1

    def _receive(self, request: RecordedRequest) -> Scripted | None:
        with self._lock:
            self._requests.append(request)
            queue = self._scripts.get(request.endpoint)
            return queue.popleft() if queue else None

    def _answer(self, request: RecordedRequest) -> Reply | None:
        """The reply to send, or None to drop the connection."""
        scripted = self._receive(request)
        delay = scripted.delay if scripted is not None else self.latency
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            if delay:
                self._stopping.wait(delay)
        finally:
            with self._lock:
                self._in_flight -= 1
        if scripted is not None and scripted.drop:
            return None
        if scripted is not None and scripted.reply is not None:
            return scripted.reply
        if request.endpoint == "unknown":
            return self.not_found(request)
        return self.respond(request.endpoint, request)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its emulator and its open connections."""

    daemon_threads = True
    # socketserver's backlog of 5 drops the SYNs of a sender opening its pool (hundreds of
    # connections at once), and each dropped one waits a second to try again: no real API does.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.emulator.tls is None:
            return connection, address
        # The handshake happens in the connection's own thread (see _Handler.setup), not here.
        wrapped = self.emulator.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # a client that refused our certificate, or hung up
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (a DNS lookup); loopback needs none.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        self.emulator._connected()
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Parses and records one request, then writes the emulator's answer."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs do
    # Headers and body go out in two sends: with Nagle on, the body would wait ~40 ms for the
    # client's delayed ACK, a stall no real provider adds (and one that hides the sender's cost).
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        emulator = self.server.emulator
        try:
            request = self._read()
            reply = emulator._answer(request)
            if reply is None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._write(reply)
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True  # the client gave up (e.g. its timeout ran out)

    def _read(self) -> RecordedRequest:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        content_type = headers.get("content-type", "").split(";")[0].strip()
        parsed_json: Any = None
        form: dict[str, list[str]] = {}
        if content_type == "application/json":
            try:
                parsed_json = json.loads(body)
            except ValueError:
                parsed_json = None
        elif content_type == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        endpoint = self.server.emulator.route(self.command, parts.path) or "unknown"
        return RecordedRequest(
            endpoint=endpoint,
            peer=f"{self.client_address[0]}:{self.client_address[1]}",
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=body,
            json=parsed_json,
            form=form,
        )

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emulator.verbose:
            sys.stderr.write(f"[{type(self.server.emulator).__name__}] {format % args}\n")
