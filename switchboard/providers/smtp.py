"""Email over SMTP (``aiosmtplib``): the way to send through SES, Postmark, Mailgun or your own relay.

Why aiosmtplib rather than the stdlib's smtplib: issue 20 moves sending onto an asyncio
loop that keeps hundreds of sends in flight, and a blocking smtplib session would need a
thread for each of them. ``asend`` is the real implementation (call it from that loop);
``send`` runs it on a private loop thread for today's threaded workers. aiosmtplib also
does STARTTLS, implicit TLS, AUTH and per-command timeouts itself.

The transaction is driven command by command (MAIL, RCPT per recipient, DATA) rather than
with ``sendmail`` so each refusal is classified where it happened: an RCPT refusal names its
recipient, and only a failure after DATA went out is ambiguous (the relay may have queued
the message). A reused connection that the relay had closed is replaced once, before
anything was sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import weakref
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from enum import StrEnum
from pathlib import Path

import aiosmtplib

from bus.settings_loader import Secret
from switchboard.channels import Channel
from switchboard.errors import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    SettingsError,
    TransientProviderError,
)
from switchboard.privacy import mask
from switchboard.providers.base import (
    EmailMessage,
    EmailResult,
    ProviderResult,
    RecipientRefusal,
    check_timeout,
    redact,
)
from switchboard.providers.loops import LoopThread
from switchboard.providers.smtp_pool import Connection, ConnectionPool

# Quoted-printable or base64 bodies: any relay takes them, 8BITMIME or not.
_POLICY = SMTP_POLICY.clone(cte_type="7bit")


class SmtpSecurity(StrEnum):
    """How the connection is protected: STARTTLS (port 587), implicit TLS (465), or not at all."""

    STARTTLS = "starttls"
    SSL = "ssl"
    NONE = "none"


DEFAULT_PORTS = {SmtpSecurity.STARTTLS: 587, SmtpSecurity.SSL: 465, SmtpSecurity.NONE: 25}


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """``[switchboard.smtp]``: email through an SMTP relay; without ``host`` it is not configured."""

    host: str | None = None
    port: int | None = None
    """None: 587 with STARTTLS, 465 with ssl, 25 with none."""
    username: str | None = None
    password: Secret | None = None
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    ca_file: Path | None = None
    """Certificates to trust instead of the system's (a private relay's own authority)."""
    timeout: float = 10.0
    """Seconds for connecting and for each command's answer."""
    max_connections: int = 8
    max_messages_per_connection: int = 100
    idle_seconds: float = 30.0
    local_hostname: str | None = None
    """The name sent in EHLO; None: this host's fully qualified name."""

    def __post_init__(self) -> None:
        check_timeout("smtp", self.timeout)
        for name in ("max_connections", "max_messages_per_connection"):
            if getattr(self, name) < 1:
                raise SettingsError(f"switchboard.smtp.{name} must be at least 1")
        if not self.idle_seconds > 0:
            raise SettingsError("switchboard.smtp.idle_seconds must be greater than 0")
        if bool(self.username) != bool(self.password):
            raise SettingsError("switchboard.smtp: give both username and password, or neither")
        if self.username and self.security is SmtpSecurity.NONE and not _loopback(self.host):
            raise SettingsError("switchboard.smtp: security = 'none' would send the password in clear; use starttls")

    @property
    def configured(self) -> bool:
        return bool(self.host)

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


class SmtpProvider:
    """Sends one EmailMessage per call over pooled, authenticated connections."""

    channel = Channel.EMAIL
    name = "smtp"

    def __init__(self, config: SmtpConfig, *, sender: str) -> None:
        if not config.host:
            raise ProviderConfigurationError("SMTP needs a host")
        self._config = config
        self._password = config.password.reveal() if config.password else None
        self.sender = sender
        """The default ``from`` (the first of ``[switchboard] senders``)."""
        self._tls = _tls_context(config) if config.security is not SmtpSecurity.NONE else None
        # Connections belong to the loop they were opened on: one pool per loop (the worker's
        # send loop, and the private one ``send`` runs on).
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionPool] = weakref.WeakKeyDictionary()
        self._thread = LoopThread("smtp-provider")

    def send(self, message: EmailMessage) -> ProviderResult:
        """Send from a thread; see ``asend``."""
        return self._thread.run(self.asend(message))

    async def asend(self, message: EmailMessage) -> ProviderResult:
        """Submit the email: a result naming refused recipients, or a ProviderError subclass."""
        mime, message_id = self._mime(message)
        envelope_from = parseaddr(message.from_email or self.sender)[1]
        recipients = _addresses([*message.to, *message.cc, *message.bcc])
        data = mime.as_bytes(policy=_POLICY)
        if not envelope_from.isascii():
            raise PermanentProviderError(f"SMTP: the sender {mask(envelope_from)} needs SMTPUTF8, which is not used")
        # Addresses outside ASCII need SMTPUTF8 (not used here): refused before anything is sent.
        unsendable = [RecipientRefusal(a, _needs_smtputf8(a)) for a in recipients if not a.isascii()]
        if len(unsendable) == len(recipients):
            raise _all_refused(unsendable)
        connection = await self._connection(envelope_from)
        sent = reusable = False
        try:
            refusals = unsendable + await self._recipients(connection, [a for a in recipients if a.isascii()])
            if len(refusals) == len(recipients):
                reusable = await _reset(connection)
                raise _all_refused(refusals)
            await self._data(connection, data)
            sent = reusable = True
        except aiosmtplib.SMTPResponseException as exc:
            reusable = exc.code != 421 and await _reset(connection)
            raise self._response_error(exc) from None
        finally:
            self._pool_for().release(connection, sent=sent, reusable=reusable)
        if refusals:
            return EmailResult(self.name, message_id, status="partial", refused=tuple(refusals))
        return ProviderResult(self.name, message_id)

    def close(self) -> None:
        """Close the kept-open connections (each pool on its own loop) and the private loop."""
        pools = dict(self._pools)
        self._pools.clear()
        own = self._thread.loop
        for loop, pool in pools.items():
            if loop is own or loop.is_closed():
                continue
            if loop.is_running():
                loop.call_soon_threadsafe(pool.close)
            else:
                pool.close()
        own_pool = pools.get(own) if own is not None else None
        self._thread.stop(own_pool.close if own_pool is not None else None)

    # --- the transaction ----------------------------------------------------------------
    async def _connection(self, envelope_from: str) -> Connection:
        """A connection on which MAIL FROM was accepted (a stale pooled one replaced once)."""
        pool = self._pool_for()
        while True:
            connection = await pool.acquire()
            try:
                await connection.smtp.mail(envelope_from, timeout=self._config.timeout)
                return connection
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
                pool.release(connection, sent=False, reusable=False)
                if not connection.reused:
                    raise self._network_error(exc, ambiguous=False) from None
            except aiosmtplib.SMTPResponseException as exc:
                reusable = exc.code != 421 and await _reset(connection)
                pool.release(connection, sent=False, reusable=reusable)
                if not (connection.reused and exc.code == 421):  # a relay that timed out an idle client says 421
                    raise self._response_error(exc) from None

    async def _recipients(self, connection: Connection, recipients: list[str]) -> list[RecipientRefusal]:
        refusals: list[RecipientRefusal] = []
        for address in recipients:
            try:
                await connection.smtp.rcpt(address, timeout=self._config.timeout)
            except aiosmtplib.SMTPRecipientRefused as exc:
                if exc.code == 421:  # the relay is closing: nothing more goes through this transaction
                    raise
                refusals.append(RecipientRefusal(address, self._refusal(exc)))
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
                raise self._network_error(exc, ambiguous=False) from None
        return refusals

    async def _data(self, connection: Connection, data: bytes) -> None:
        try:
            await connection.smtp.data(data, timeout=self._config.timeout)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
            # The message may be queued at the relay already: sending it again may duplicate it.
            raise self._network_error(exc, ambiguous=True) from None

    # --- building -----------------------------------------------------------------------
    def _mime(self, message: EmailMessage) -> tuple[MimeMessage, str]:
        sender = message.from_email or self.sender
        message_id = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
        try:
            mime = MimeMessage(policy=_POLICY)
            mime["From"] = sender
            mime["To"] = ", ".join(message.to)
            if message.cc:
                mime["Cc"] = ", ".join(message.cc)
            if message.reply_to:
                mime["Reply-To"] = message.reply_to
            mime["Subject"] = message.subject
            mime["Date"] = formatdate(usegmt=True)
            mime["Message-ID"] = message_id
            for key, value in message.headers.items():
                mime[key] = value
            if message.text is not None:
                mime.set_content(message.text)
                if message.html is not None:
                    mime.add_alternative(message.html, subtype="html")
            elif message.html is not None:
                mime.set_content(message.html, subtype="html")
            mime.as_bytes(policy=_POLICY)  # header problems surface here, not halfway through DATA
        except (ValueError, TypeError, UnicodeError) as exc:
            raise PermanentProviderError(f"the email cannot be written as MIME: {type(exc).__name__}") from None
        return mime, message_id

    # --- connecting ---------------------------------------------------------------------
    def _pool_for(self) -> ConnectionPool:
        """The running loop's pool (made on its first send)."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            config = self._config
            pool = self._pools[loop] = ConnectionPool(
                self._open,
                size=config.max_connections,
                max_messages=config.max_messages_per_connection,
                idle_seconds=config.idle_seconds,
            )
        return pool

    async def _open(self) -> aiosmtplib.SMTP:
        config = self._config
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.effective_port,
            username=config.username,
            password=self._password,
            timeout=config.timeout,
            use_tls=config.security is SmtpSecurity.SSL,
            start_tls=config.security is SmtpSecurity.STARTTLS,
            tls_context=self._tls,
            local_hostname=config.local_hostname,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            kind = TransientProviderError if 400 <= exc.code < 500 else ProviderConfigurationError
            raise kind(self._safe(f"SMTP login refused: {exc.code} {exc.message}"), status=exc.code) from None
        except ssl.SSLCertVerificationError as exc:
            raise ProviderConfigurationError(f"SMTP server certificate not trusted: {exc.verify_message}") from None
        except aiosmtplib.SMTPResponseException as exc:
            kind = TransientProviderError if 400 <= exc.code < 500 else ProviderConfigurationError
            raise kind(
                self._safe(f"SMTP server refused the session: {exc.code} {exc.message}"), status=exc.code
            ) from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected) as exc:
            raise self._network_error(exc, ambiguous=False) from None
        except (aiosmtplib.SMTPException, ssl.SSLError) as exc:
            # No STARTTLS or no AUTH offered, a TLS version mismatch: retrying cannot fix the setup.
            raise ProviderConfigurationError(self._safe(f"SMTP session unusable: {exc}")) from None
        except OSError as exc:
            raise self._network_error(exc, ambiguous=False) from None
        return smtp

    # --- classifying --------------------------------------------------------------------
    def _refusal(self, exc: aiosmtplib.SMTPRecipientRefused) -> ProviderError:
        text = self._safe(f"SMTP refused {mask(exc.recipient)}: {exc.code} {_masked(exc.message)}")
        if 400 <= exc.code < 500:
            return TransientProviderError(text, status=exc.code)
        return PermanentProviderError(text, status=exc.code, recipient_problem=True, recipients=(exc.recipient,))

    def _response_error(self, exc: aiosmtplib.SMTPResponseException) -> ProviderError:
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
            return self._refusal(exc)
        sender = exc.sender if isinstance(exc, aiosmtplib.SMTPSenderRefused) else None
        text = self._safe(f"SMTP refused {'MAIL FROM' if sender else 'DATA'}: {exc.code} {_masked(exc.message)}")
        if 400 <= exc.code < 500:
            return TransientProviderError(text, status=exc.code)
        if sender is not None:
            # The relay will not send from this address (not verified, not ours): the other senders still work.
            return ProviderConfigurationError(text, status=exc.code, sender=sender.lower())
        return PermanentProviderError(text, status=exc.code)

    def _network_error(self, exc: Exception, *, ambiguous: bool) -> TransientProviderError:
        kind = AmbiguousProviderError if ambiguous else TransientProviderError
        return kind(self._safe(f"SMTP {type(exc).__name__}: {exc}"))

    def _safe(self, text: str) -> str:
        return redact(text, [self._password or ""])


def _all_refused(refusals: list[RecipientRefusal]) -> ProviderError:
    """Every recipient refused: one error, permanent only when every refusal is; it names for
    suppression only the recipients refused for being bad addresses."""
    first = refusals[0].error
    if all(isinstance(r.error, PermanentProviderError) for r in refusals):
        bad = tuple(
            r.recipient for r in refusals if isinstance(r.error, PermanentProviderError) and r.error.recipient_problem
        )
        return PermanentProviderError(
            f"SMTP refused all {len(refusals)} recipients; first: {first}",
            status=first.status,
            recipient_problem=bool(bad),
            recipients=bad,
        )
    transient = next(r.error for r in refusals if isinstance(r.error, TransientProviderError))
    return TransientProviderError(f"SMTP refused all {len(refusals)} recipients; {transient}", status=transient.status)


def _needs_smtputf8(address: str) -> ProviderError:
    # Not the recipient's fault: no suppression, but retrying cannot help either.
    return PermanentProviderError(f"SMTP: {mask(address)} needs SMTPUTF8, which is not used")


async def _reset(connection: Connection) -> bool:
    """RSET after a refusal, so the connection can serve the next message; False when it cannot."""
    try:
        await connection.smtp.rset()
    except (aiosmtplib.SMTPException, OSError):
        return False
    return True


def _addresses(values: list[str]) -> list[str]:
    """Envelope addresses: the bare address of each 'Name <addr>', each once, in order."""
    seen: dict[str, None] = {}
    for _, address in getaddresses(values):
        if address and "@" in address:
            seen.setdefault(address, None)
    if not seen:
        raise PermanentProviderError("the email has no usable recipient address", recipient_problem=True)
    return list(seen)


def _masked(text: str) -> str:
    """A relay's reply text with any address in it masked (relays quote the recipient)."""
    words = []
    for word in text.split():
        core = word.strip("<>;,.:()[]\"'")
        words.append(word.replace(core, mask(core)) if "@" in core else word)
    return " ".join(words)


def _tls_context(config: SmtpConfig) -> ssl.SSLContext:
    cafile = str(config.ca_file) if config.ca_file else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ProviderConfigurationError(f"switchboard.smtp.ca_file unusable: {type(exc).__name__}") from None


def _loopback(host: str | None) -> bool:
    if host in (None, "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
