"""Push through Firebase Cloud Messaging HTTP v1: ``pyfcm`` builds each message, google-auth
fetches and refreshes the access token, and the POST goes over kept-alive connections
(``providers.http``).

Stock pyfcm sleeps on any Retry-After and resends without limit, and its default adapter
retries POSTs on 502/503, connection errors and read timeouts (a push can then arrive twice);
it also keeps a session and a token per thread. Here each message is exactly one HTTP request
whose failure is raised as a classified ProviderError, and one access token serves every
send. A push to several tokens is one request per token, with each token's outcome reported.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google.auth.transport.requests
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.oauth2 import service_account
from pyfcm import FCMNotification
from pyfcm.errors import FCMError

from bus.settings_loader import Secret
from switchboard.channels import Channel
from switchboard.errors import (
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    SettingsError,
    TransientProviderError,
)
from switchboard.privacy import mask_text
from switchboard.providers.base import (
    PushMessage,
    PushOutcome,
    PushResult,
    check_timeout,
    parse_retry_after,
    redact,
)
from switchboard.providers.http import Answer, HttpClient
from switchboard.providers.loops import LoopThread

FCM_API = "https://fcm.googleapis.com"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
RECIPIENT_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})


@dataclass(frozen=True, slots=True)
class FcmConfig:
    """``[switchboard.fcm]``: push through FCM with a service account (a file or its JSON text);
    without one push goes to the outbox. ``base_url`` None is Google."""

    service_account_file: Path | None = None
    service_account_json: Secret | None = None
    token_uri: str | None = None
    """Overrides the account's token_uri (emulators)."""
    base_url: str | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        check_timeout("fcm", self.timeout)
        if self.service_account_file is not None and self.service_account_json is not None:
            raise SettingsError("switchboard.fcm: give service_account_file or service_account_json, not both")

    @property
    def configured(self) -> bool:
        return self.service_account_file is not None or self.service_account_json is not None


class BoundedRequest(google.auth.transport.requests.Request):
    """google-auth's transport with our timeout instead of its 120 s default."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def __call__(
        self, url: Any, method: Any = "GET", body: Any = None, headers: Any = None, timeout: Any = None, **kwargs: Any
    ) -> Any:
        bounded = min(timeout or self._timeout, self._timeout)
        return super().__call__(url, method, body, headers, bounded, **kwargs)  # type: ignore[no-untyped-call]


class AccessToken:
    """One OAuth access token for every send, fetched by google-auth and refreshed before it
    expires (or once FCM refused it); the fetch blocks, so it runs on a thread, one at a time."""

    def __init__(self, credentials: service_account.Credentials, *, timeout: float) -> None:
        self._credentials = credentials
        self._timeout = timeout
        self._lock = threading.Lock()
        self._refused: str | None = None

    @property
    def current(self) -> str:
        """The token in use ("" before the first fetch), for redaction."""
        return str(self._credentials.token or "")

    async def get(self) -> str:
        """A token fit to send with (fetched first when there is none, or it is old or refused)."""
        if self._usable():
            return self.current
        return await asyncio.to_thread(self._refresh)

    def refused(self, token: str) -> None:
        """FCM answered 401 to ``token``: the next send fetches another."""
        self._refused = token

    def _usable(self) -> bool:
        credentials = self._credentials
        return bool(credentials.valid) and credentials.token != self._refused

    def _refresh(self) -> str:
        with self._lock:
            if self._usable():  # another send fetched one meanwhile
                return self.current
            try:
                self._credentials.refresh(BoundedRequest(self._timeout))  # type: ignore[no-untyped-call]
            except RefreshError as exc:
                kind = TransientProviderError if exc.retryable else ProviderConfigurationError
                raise kind(self._safe(f"FCM access token refused: {exc}")) from None
            except TransportError as exc:
                raise TransientProviderError(self._safe(f"FCM token endpoint unreachable: {exc}")) from None
            except GoogleAuthError as exc:
                raise ProviderConfigurationError(self._safe(f"FCM credentials unusable: {exc}")) from None
            self._refused = None
            return self.current

    def _safe(self, text: str) -> str:
        return redact(text, [self.current])


class FcmProvider:
    """Sends a PushMessage: one request per device token (or one for the topic)."""

    channel = Channel.PUSH
    name = "fcm"

    def __init__(self, config: FcmConfig) -> None:
        self._config = config
        credentials = _credentials(config)
        project_id = getattr(credentials, "project_id", None)
        if not project_id:
            raise ProviderConfigurationError("FCM service account has no project_id")
        self._payloads = FCMNotification(credentials=credentials)
        """pyfcm, for building messages (its own sending is not used)."""
        base = (config.base_url or FCM_API).rstrip("/").removesuffix("/v1/projects")  # either form is fine
        self._url = f"{base}/v1/projects/{project_id}/messages:send"
        self._token = AccessToken(credentials, timeout=config.timeout)
        self._http = HttpClient("FCM", timeout=config.timeout, safe=self._safe)
        self._thread = LoopThread("fcm-provider")

    def send(self, message: PushMessage) -> PushResult:
        """Send from a thread; see ``asend``."""
        return self._thread.run(self.asend(message))

    async def asend(self, message: PushMessage) -> PushResult:
        """Send to every target; raise when all targets failed alike, else report each one."""
        targets = [(token, {"fcm_token": token}) for token in message.tokens]
        if message.topic is not None:
            targets = [(message.topic, {"topic_name": message.topic})]
        outcomes: list[PushOutcome] = []
        for index, (target, address) in enumerate(targets):
            try:
                outcomes.append(PushOutcome(target, message_id=await self._notify(address, message)))
            except ProviderConfigurationError:
                raise
            except ProviderError as exc:
                if isinstance(exc, PermanentProviderError) and exc.recipient_problem:
                    exc.recipients = (target,)  # this token: the one to suppress
                outcomes.append(PushOutcome(target, error=exc))
                if not _about_target(exc):
                    # The message or FCM itself is the problem: the other targets would fare alike.
                    outcomes.extend(PushOutcome(rest, error=exc) for rest, _ in targets[index + 1 :])
                    break
        return _conclude(self.name, outcomes)

    def close(self) -> None:
        """Close the kept-alive connections and the private loop."""
        self._http.close()
        self._thread.stop()

    async def _notify(self, address: dict[str, str], message: PushMessage) -> str | None:
        try:
            payload: bytes = self._payloads.parse_payload(
                notification_title=message.title,
                notification_body=message.body,
                notification_image=message.image,
                data_payload=dict(message.data) or None,
                **address,
            )
        except FCMError as exc:
            # pyfcm's own checks of the payload (it raises these before any request).
            raise PermanentProviderError(self._safe(f"pyfcm refused the push: {exc}", message)) from None
        token = await self._token.get()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        answer = await self._http.post(self._url, headers=headers, data=payload)
        if answer.status == 200:
            body = answer.json()
            name = body.get("name") if isinstance(body, dict) else None
            return name if isinstance(name, str) else None
        if answer.status == 401:
            self._token.refused(token)
        raise http_error(answer, lambda text: self._safe(text, message))

    def _safe(self, text: str, message: PushMessage | None = None) -> str:
        """Provider text fit to store and log: no access token, the device tokens being sent to masked."""
        return mask_text(redact(text, [self._token.current]), message.tokens if message is not None else ())


def http_error(answer: Answer, safe: Callable[[str], str]) -> ProviderError:
    """Classify an FCM v1 error answer (``{"error": {code, message, status, details}}``)."""
    status = answer.status
    error = answer.json()
    error = error.get("error") if isinstance(error, dict) else None
    error = error if isinstance(error, dict) else {}
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    fcm_code = next((d["errorCode"] for d in details if "errorCode" in d), None) or error.get("status")
    reasons = {d.get("reason") for d in details}
    message = str(error.get("message") or answer.reason)
    text = safe(f"FCM answered {status} {fcm_code or ''}: {message}".replace("  ", " "))
    code = str(fcm_code) if fcm_code else None
    wait = parse_retry_after(answer.headers.get("Retry-After"))
    if fcm_code in RECIPIENT_CODES:
        return PermanentProviderError(text, status=status, code=code, recipient_problem=True)
    if status == 401:
        if "ACCESS_TOKEN_EXPIRED" in reasons:
            return TransientProviderError(text, status=status, code=code, retry_after=0.0)
        return ProviderConfigurationError(text, status=status, code=code)
    if status == 429 or status >= 500:
        return TransientProviderError(text, status=status, code=code, retry_after=wait)
    if fcm_code == "INVALID_ARGUMENT" and "registration token" in message:
        # FCM tells a bad token from a bad payload only in the message text.
        return PermanentProviderError(text, status=status, code=code, recipient_problem=True)
    if status in (403, 404):
        return ProviderConfigurationError(text, status=status, code=code)
    return PermanentProviderError(text, status=status, code=code)


def _about_target(error: ProviderError) -> bool:
    return isinstance(error, PermanentProviderError) and error.recipient_problem


def _conclude(provider: str, outcomes: list[PushOutcome]) -> PushResult:
    """A result when anything was delivered or the failures differ; else the one error they share."""
    errors = [o.error for o in outcomes if o.error is not None]
    delivered = [o.message_id for o in outcomes if o.error is None]
    if errors and not delivered:
        first = errors[0]
        if all(e is first for e in errors):
            raise first
        if all(_about_target(e) for e in errors):
            raise PermanentProviderError(
                f"FCM rejected all {len(errors)} tokens; first: {first}",
                status=first.status,
                code=first.code,
                recipient_problem=True,
                recipients=tuple(o.target for o in outcomes),
            )
    status = "accepted" if not errors else "partial"
    return PushResult(provider, message_id=next(iter(delivered), None), status=status, outcomes=tuple(outcomes))


def _credentials(config: FcmConfig) -> service_account.Credentials:
    try:
        if config.service_account_file is not None:
            raw = config.service_account_file.read_text(encoding="utf-8")
        else:
            raw = config.service_account_json.reveal() if config.service_account_json else ""
        info = json.loads(raw)
        if config.token_uri:
            info["token_uri"] = config.token_uri
        credentials: service_account.Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[FCM_SCOPE]
        )
        return credentials
    except (OSError, ValueError, TypeError, KeyError) as exc:
        # Never the exception text: it can quote the JSON, private key included.
        raise ProviderConfigurationError(f"FCM service account unusable: {type(exc).__name__}") from None
