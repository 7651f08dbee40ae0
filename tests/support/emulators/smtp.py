"""A real SMTP server in the test process (``aiosmtpd``): STARTTLS or implicit TLS, AUTH, and the
refusals real relays give (421 and hang up, 450, 550, 535...), per address or per command.

Every accepted message is kept with its envelope and the peer it came from, so tests see
what went over the wire and whether a connection was reused.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bus.backend.embedded import free_port
from tests.support.tls import TlsFiles

USERNAME = "relay-user"
PASSWORD = "relay-password-do-not-leak-0123"


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    peer: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    tls: bool
    authenticated: bool

    @property
    def message(self) -> EmailMessage:
        parsed: EmailMessage = message_from_bytes(self.content, policy=policy.default)
        return parsed


@dataclass(frozen=True)
class Answer:
    """A scripted reply to one command; ``hang_up`` closes the connection right after it (as a
    relay does after 421); ``delay`` seconds pass first (a slow relay)."""

    reply: str | None = None
    hang_up: bool = False
    delay: float = 0.0


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = await self.server._answer("MAIL", smtp)
        if answer is not None:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = await self.server._answer("RCPT", smtp, address)
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await self.server._answer("DATA", smtp)
        if answer is not None:
            return answer
        content = envelope.original_content or b""
        self.server._keep(
            Received(
                peer=str(session.peer),
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                content=content,
                tls=smtp.transport is not None and smtp.transport.get_extra_info("ssl_object") is not None,
                authenticated=bool(session.authenticated),
            )
        )
        return "250 2.0.0 Ok: queued"


class SmtpServer:
    """An SMTP relay on a free loopback port; ``tls`` is "starttls" (required before AUTH), "ssl"
    (implicit TLS) or "none"; with ``auth`` every message needs AUTH as USERNAME/PASSWORD."""

    def __init__(self, certificates: TlsFiles | None, *, tls: str = "starttls", auth: bool = True) -> None:
        self.certificates = certificates
        self.tls = tls
        self.auth = auth
        self.received: list[Received] = []
        self.connections = 0
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Answer]] = defaultdict(deque)
        self._addresses: dict[str, Answer] = {}
        self._release = threading.Event()
        self._controller: Controller | None = None
        self._port = 0

    # --- what tests script ----------------------------------------------------------
    def refuse(self, address: str, reply: str, *, hang_up: bool = False) -> None:
        """Every RCPT TO this address gets ``reply`` (e.g. "550 5.1.1 <x>: user unknown")."""
        with self._lock:
            self._addresses[address.lower()] = Answer(reply, hang_up)

    def script(self, command: str, *answers: Answer) -> None:
        """The next answers to MAIL, RCPT or DATA, in order, before the normal ones."""
        with self._lock:
            self._scripts[command].extend(answers)

    def release(self) -> None:
        """End every scripted delay now (a test done with a slow answer)."""
        self._release.set()

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> Self:
        self._port = free_port()
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self._port, "server_hostname": "relay.test"}
        if self.tls == "starttls" and self.certificates is not None:
            kwargs.update(tls_context=self.certificates.server_context(), require_starttls=True)
        elif self.tls == "ssl" and self.certificates is not None:
            kwargs["ssl_context"] = self.certificates.server_context()
        if self.auth:
            # aiosmtpd sees STARTTLS only; implicit TLS is on the transport, so AUTH is allowed there too.
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=self.tls == "starttls")
        self._controller = _CountingController(self, _Handler(self), **kwargs)
        self._controller.start()
        with self._lock:
            self.connections = 0  # the controller's own connection that starts the server
        return self

    def stop(self) -> None:
        self._release.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("the SMTP server is not running")
        return self._port

    # --- used by the handler --------------------------------------------------------
    def _authenticate(self, smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USERNAME.encode(), PASSWORD.encode())
        scripted = self._next("AUTH")
        if scripted is not None:
            return AuthResult(success=False, handled=False, message=scripted.reply)
        if ok:
            with self._lock:
                self.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    def _next(self, command: str, address: str | None = None) -> Answer | None:
        with self._lock:
            queue = self._scripts.get(command)
            if queue:
                return queue.popleft()
            return self._addresses.get(address.lower()) if address else None

    async def _answer(self, command: str, smtp: SMTP, address: str | None = None) -> str | None:
        answer = self._next(command, address)
        if answer is None:
            return None
        if answer.delay:
            await asyncio.get_running_loop().run_in_executor(None, self._release.wait, answer.delay)
        if answer.hang_up and smtp.transport is not None:
            smtp.loop.call_soon(smtp.transport.close)  # after the reply is written, as a relay does
        return answer.reply

    def _keep(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1


class _CountingController(Controller):
    """aiosmtpd's controller, counting the connections it accepts."""

    def __init__(self, owner: SmtpServer, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.owner = owner

    def factory(self) -> SMTP:
        self.owner._connected()
        return super().factory()  # type: ignore[no-untyped-call,no-any-return]
