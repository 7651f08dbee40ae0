"""Push through Firebase Cloud Messaging HTTP v1, with the ``pyfcm`` SDK minus its hidden retries.

Stock pyfcm sleeps on any Retry-After and resends without limit, and its default adapter
retries POSTs on 502/503, connection errors and read timeouts (a push can then arrive twice).
``OneShotFCM`` keeps pyfcm's payload building and token handling but makes each ``notify``
exactly one HTTP request whose failure is raised as a classified ProviderError. A push to
several tokens is one request per token, with each token's outcome reported.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google.auth.transport.requests
import requests
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.oauth2 import service_account
from pyfcm import FCMNotification
from pyfcm.errors import FCMError
from requests.adapters import HTTPAdapter

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
from switchboard.privacy import mask_text
from switchboard.providers.base import (
    PushMessage,
    PushOutcome,
    PushResult,
    check_timeout,
    parse_retry_after,
    redact,
    request_reached_server,
)

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


class OneShotFCM(FCMNotification):  # type: ignore[misc]
    """pyfcm where every failure is one request and a classified ProviderError, never a retry."""

    def __init__(self, credentials: service_account.Credentials, *, base_url: str, timeout: float) -> None:
        super().__init__(credentials=credentials, adapter=HTTPAdapter())
        base = base_url.rstrip("/").removesuffix("/v1/projects")  # either form of the URL is fine
        self.FCM_END_POINT_BASE = f"{base}/v1/projects"
        self._timeout = timeout

    def request_headers(self) -> dict[str, str]:
        """Fetch an access token (pyfcm asks once per thread per 30 minutes), bounded and classified."""
        try:
            self.credentials.refresh(BoundedRequest(self._timeout))
        except RefreshError as exc:
            kind = TransientProviderError if exc.retryable else ProviderConfigurationError
            raise kind(self.safe(f"FCM access token refused: {exc}")) from None
        except TransportError as exc:
            raise TransientProviderError(self.safe(f"FCM token endpoint unreachable: {exc}")) from None
        except GoogleAuthError as exc:
            raise ProviderConfigurationError(self.safe(f"FCM credentials unusable: {exc}")) from None
        return {"Content-Type": "application/json", "Authorization": f"Bearer {self.credentials.token}"}

    def send_request(self, payload: bytes | None = None, timeout: float | None = None) -> requests.Response:
        """One POST: no sleeping on Retry-After, no resend, no adapter retries."""
        try:
            response: requests.Response = self.requests_session.post(
                self.fcm_end_point, data=payload, timeout=timeout or self._timeout
            )
            return response
        except requests.ReadTimeout as exc:
            # The request arrived: FCM may have accepted the push before the wait ran out.
            raise AmbiguousProviderError(self.safe(f"FCM did not answer in time: {exc}")) from None
        except requests.RequestException as exc:
            # A connection cut after the request went out is as ambiguous as a timeout.
            kind = AmbiguousProviderError if request_reached_server(exc) else TransientProviderError
            raise kind(self.safe(f"FCM unreachable: {type(exc).__name__}: {exc}")) from None

    def parse_response(self, response: requests.Response) -> dict[str, Any]:
        if response.status_code == 200:
            answer = _json(response)
            return answer if isinstance(answer, dict) else {}
        if response.status_code == 401:
            # pyfcm's own field: the next call on this thread fetches a fresh token.
            self.thread_local.token_expiry = 0
        raise http_error(response, self.safe)

    def safe(self, text: str) -> str:
        """Provider text fit to store and log: no access token, the device tokens being sent to masked."""
        return mask_text(redact(text, [str(self.credentials.token or "")]), getattr(self.thread_local, "targets", ()))


class FcmProvider:
    """Sends a PushMessage: one request per device token (or one for the topic)."""

    channel = Channel.PUSH
    name = "fcm"

    def __init__(self, config: FcmConfig) -> None:
        self._config = config
        credentials = _credentials(config)
        self._fcm = OneShotFCM(credentials, base_url=config.base_url or FCM_API, timeout=config.timeout)

    def send(self, message: PushMessage) -> PushResult:
        """Send to every target; raise when all targets failed alike, else report each one."""
        targets = [(token, {"fcm_token": token}) for token in message.tokens]
        if message.topic is not None:
            targets = [(message.topic, {"topic_name": message.topic})]
        outcomes: list[PushOutcome] = []
        self._fcm.thread_local.targets = tuple(message.tokens)
        for index, (target, address) in enumerate(targets):
            try:
                outcomes.append(PushOutcome(target, message_id=self._notify(address, message)))
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

    async def asend(self, message: PushMessage) -> PushResult:
        """``send`` on a thread, off the event loop (the SDK blocks)."""
        return await asyncio.to_thread(self.send, message)

    def close(self) -> None:
        """Close the pooled connections shared by every thread's session."""
        self._fcm.custom_adapter.close()

    def _notify(self, address: dict[str, str], message: PushMessage) -> str | None:
        try:
            answer = self._fcm.notify(
                notification_title=message.title,
                notification_body=message.body,
                notification_image=message.image,
                data_payload=dict(message.data) or None,
                timeout=self._config.timeout,
                **address,
            )
        except FCMError as exc:
            # pyfcm's own checks of the payload (it raises these before any request).
            raise PermanentProviderError(self._fcm.safe(f"pyfcm refused the push: {exc}")) from None
        name = answer.get("name")
        return name if isinstance(name, str) else None


def http_error(response: requests.Response, safe: Callable[[str], str]) -> ProviderError:
    """Classify an FCM v1 error response (``{"error": {code, message, status, details}}``)."""
    status = response.status_code
    error = _json(response)
    error = error.get("error") if isinstance(error, dict) else None
    error = error if isinstance(error, dict) else {}
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    fcm_code = next((d["errorCode"] for d in details if "errorCode" in d), None) or error.get("status")
    reasons = {d.get("reason") for d in details}
    message = str(error.get("message") or response.reason)
    text = safe(f"FCM answered {status} {fcm_code or ''}: {message}".replace("  ", " "))
    code = str(fcm_code) if fcm_code else None
    wait = parse_retry_after(response.headers.get("Retry-After"))
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


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
