"""SMS through Vonage's SMS API, with the official ``vonage`` SDK (v4: vonage-http-client, vonage-sms).

What the SDK does that a worker must not keep (read in vonage-http-client 1.5 / vonage-sms 1.2):
- its HttpClient resends a POST whose connection was cut after the request went out
  ("RemoteDisconnected") up to ``pool_maxsize`` times, so an SMS can go out twice;
  ``OneShotHttpClient`` makes that one attempt and mounts its own pool without retries;
- timeouts are whole seconds in its options (ours are not), and there is none by default;
- ``Sms.send`` keeps a failed message's status code only inside its exception's text, so we
  post the SDK's ``SmsMessage`` through its HttpClient and read each part's status ourselves;
- it logs every request at DEBUG with its Authorization header (the key and secret, in
  base64) and the recipient: the ``vonage`` logger keeps only warnings and above;
- it always speaks https to ``rest_host`` (a host name, no scheme): an emulator needs TLS.

Vonage answers 200 even when a message fails, with a ``status`` per message part.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from vonage_http_client import Auth, HttpClient, HttpClientOptions
from vonage_http_client.errors import HttpRequestError
from vonage_sms import SmsMessage as VonageSms

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
    ProviderResult,
    SmsMessage,
    check_timeout,
    parse_retry_after,
    redact,
    request_reached_server,
)
from switchboard.providers.gsm import is_gsm7

VONAGE_REST_HOST = "rest.nexmo.com"
TRANSIENT_STATUSES = frozenset({1, 5, 10})  # throttled, internal error, too many binds
CONFIGURATION_STATUSES = frozenset({4, 8, 9, 11, 14, 32})  # credentials, account barred, no credit, signature
INVALID_SENDER = 15
RECIPIENT_STATUSES = frozenset({6, 7, 33})  # unroutable number, barred number, number de-activated
_ABOUT_TO = re.compile(r"\bto\b", re.IGNORECASE)  # status 3 names the bad parameter in its text


@dataclass(frozen=True, slots=True)
class VonageConfig:
    """``[switchboard.vonage]``: SMS through Vonage; without ``api_key`` and ``api_secret`` it is not
    configured. ``base_url`` None means Vonage itself; it must be https (the SDK knows no other)."""

    api_key: str | None = None
    api_secret: Secret | None = None
    from_number: str | None = None
    """An E.164 number or an alphanumeric sender id (where the destination country allows one)."""
    status_callback: str | None = None
    base_url: str | None = None
    ca_file: Path | None = None
    """Certificates to trust instead of the system's (an emulator's own authority)."""
    timeout: float = 10.0

    def __post_init__(self) -> None:
        check_timeout("vonage", self.timeout)
        if self.base_url is not None:
            parts = urlsplit(self.base_url)
            if parts.scheme != "https" or not parts.netloc or parts.path not in ("", "/"):
                raise SettingsError(
                    "switchboard.vonage.base_url must be https://host[:port] (the SDK speaks https only)"
                )

    @property
    def configured(self) -> bool:
        return bool(self.api_key) and bool(self.api_secret)

    @property
    def rest_host(self) -> str:
        return urlsplit(self.base_url).netloc if self.base_url else VONAGE_REST_HOST


class OneShotHttpClient(HttpClient):  # type: ignore[misc]
    """vonage-http-client making exactly one request per call, with our timeout and trust store."""

    def __init__(self, auth: Auth, *, host: str, timeout: float, ca_file: Path | None) -> None:
        # pool_maxsize bounds the SDK's resend loop (one attempt); the real pool is mounted below.
        options = HttpClientOptions(rest_host=host, api_host=host, pool_maxsize=1, max_retries=0)
        super().__init__(auth, options)
        self._timeout = timeout
        self._session.mount("https://", _Adapter(ca_file))

    def close(self) -> None:
        self._session.close()


class _Adapter(HTTPAdapter):
    """A pool without urllib3 retries; ``ca_file`` wins even over $REQUESTS_CA_BUNDLE (which
    would otherwise replace a session's own ``verify``)."""

    def __init__(self, ca_file: Path | None) -> None:
        super().__init__(pool_connections=1, pool_maxsize=32, max_retries=0)
        self._verify = str(ca_file) if ca_file is not None else None

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        return super().send(request, stream, timeout, self._verify or verify, cert, proxies)


class _WarningsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_SDK_LOG_FILTER = _WarningsOnly()


class VonageProvider:
    """Sends one SmsMessage per call over a kept-alive session, classified into our errors."""

    channel = Channel.SMS
    name = "vonage"

    def __init__(self, config: VonageConfig) -> None:
        if not config.api_key or config.api_secret is None:
            raise ProviderConfigurationError("Vonage needs an api_key and an api_secret")
        if not config.from_number:
            raise ProviderConfigurationError("Vonage needs a from_number ([switchboard.vonage]) to send from")
        self._config = config
        self._secret = config.api_secret.reveal()
        logging.getLogger("vonage").addFilter(_SDK_LOG_FILTER)  # idempotent: one filter object
        auth = Auth(api_key=config.api_key, api_secret=self._secret)
        self._http = OneShotHttpClient(auth, host=config.rest_host, timeout=config.timeout, ca_file=config.ca_file)

    def send(self, message: SmsMessage) -> ProviderResult:
        """Submit the SMS; raise a ProviderError subclass unless Vonage accepted every part."""
        params = self._params(message)
        try:
            answer = self._http.post(self._http.rest_host, "/sms/json", params, "basic", "form")
        except HttpRequestError as exc:
            raise self._http_error(exc) from None
        except requests.exceptions.SSLError as exc:
            raise ProviderConfigurationError(self._safe(f"Vonage certificate not trusted: {exc}")) from None
        except requests.ReadTimeout as exc:
            raise AmbiguousProviderError(self._safe(f"Vonage timed out: {exc}")) from None
        except requests.RequestException as exc:
            kind = AmbiguousProviderError if request_reached_server(exc) else TransientProviderError
            raise kind(self._safe(f"Vonage unreachable: {type(exc).__name__}: {exc}")) from None
        return self._conclude(answer, message.to, params["from"])

    async def asend(self, message: SmsMessage) -> ProviderResult:
        """``send`` on a thread, off the event loop (the SDK blocks)."""
        return await asyncio.to_thread(self.send, message)

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._http.close()

    def _params(self, message: SmsMessage) -> dict[str, Any]:
        sender = message.from_ or self._config.from_number or ""
        # A message's own status_callback is Twilio's (``switchboard hooks``): Vonage keeps its configured one.
        callback = self._config.status_callback
        try:
            sms = VonageSms(
                to=message.to.removeprefix("+"),
                from_=sender.removeprefix("+"),
                text=message.body,
                type=None if is_gsm7(message.body) else "unicode",
                callback=callback,
                status_report_req=True if callback else None,
            )
        except ValidationError as exc:
            fields = ", ".join(str(error["loc"][0]) for error in exc.errors() if error["loc"])
            raise PermanentProviderError(f"the Vonage SDK refused the SMS: {fields or 'invalid'}") from None
        params: dict[str, Any] = sms.model_dump(by_alias=True, exclude_none=True)
        return params

    def _conclude(self, answer: Any, to: str, sender: str) -> ProviderResult:
        parts = answer.get("messages") if isinstance(answer, dict) else None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
            raise AmbiguousProviderError("Vonage answered 200 without message parts")
        failed = [p for p in parts if str(p.get("status")) != "0"]
        if failed:
            raise self._status_error(
                failed[0], accepted=len(parts) - len(failed), total=len(parts), to=to, sender=sender
            )
        message_id = parts[0].get("message-id")
        return ProviderResult(
            provider=self.name,
            message_id=str(message_id) if message_id is not None else None,
            status="accepted",
            segments=len(parts),
        )

    def _status_error(self, part: dict[str, Any], *, accepted: int, total: int, to: str, sender: str) -> ProviderError:
        raw = str(part.get("status"))
        status = int(raw) if raw.isdigit() else -1
        error_text = str(part.get("error-text") or "")
        text = self._safe(f"Vonage status {raw} for {mask(to)}: {error_text}")
        if accepted:
            text += f" ({accepted} of {total} parts accepted)"
        if status in TRANSIENT_STATUSES:
            # Parts already accepted would go out again with a retry: a duplicate, in part.
            kind = AmbiguousProviderError if accepted else TransientProviderError
            return kind(text, code=raw, retry_after=1.0 if status == 1 else None)
        if status == INVALID_SENDER:
            return ProviderConfigurationError(text, code=raw, sender=sender)  # that sender only, not the channel
        if status in CONFIGURATION_STATUSES:
            return ProviderConfigurationError(text, code=raw)
        recipient = status in RECIPIENT_STATUSES or (status == 3 and bool(_ABOUT_TO.search(error_text)))
        return PermanentProviderError(
            text, code=raw, recipient_problem=recipient, recipients=(to,) if recipient else ()
        )

    def _http_error(self, exc: HttpRequestError) -> ProviderError:
        response = exc.response
        status = int(response.status_code)
        text = self._safe(f"Vonage answered {status}: {response.text[:200]!r}")
        if status in (401, 403, 404):
            return ProviderConfigurationError(text, status=status)
        if status == 429 or status >= 500:
            return TransientProviderError(
                text, status=status, retry_after=parse_retry_after(response.headers.get("Retry-After"))
            )
        return PermanentProviderError(text, status=status)

    def _safe(self, text: str) -> str:
        return redact(text, [self._secret])
