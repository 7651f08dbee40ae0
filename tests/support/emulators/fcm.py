"""An emulator of FCM HTTP v1 and of the Google OAuth token endpoint that FCM tokens come from.

``POST /token`` implements the JWT-bearer grant: the assertion must be signed by a service
account the test generated and ``trust``-ed. ``POST /v1/projects/{P}/messages:send`` accepts
only access tokens issued that way, for that account's project.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from tests.support.emulators.base import Emulator, RecordedRequest, Reply, Scripted

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # google-auth's JWT audience
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPES = {"https://www.googleapis.com/auth/firebase.messaging", "https://www.googleapis.com/auth/cloud-platform"}
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_TOPIC = re.compile(r"^[a-zA-Z0-9\-_.~%]+$")
_GRPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_FCM_CODES = {400: "INVALID_ARGUMENT", 403: "SENDER_ID_MISMATCH", 404: "UNREGISTERED", 429: "QUOTA_EXCEEDED"}
_FCM_CODES |= {500: "INTERNAL", 503: "UNAVAILABLE"}
_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential.",
    403: "SenderId mismatch",
    404: "Requested entity was not found.",
    429: "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
INVALID_TOKEN = "The registration token is not a valid FCM registration token"


def fcm_error(status: int, error_code: str | None = None, message: str | None = None, **extra: Any) -> dict[str, Any]:
    """FCM v1's error JSON; ``error_code`` goes into an FcmError detail like FCM's own."""
    details = [{"@type": FCM_ERROR, "errorCode": error_code}] if error_code else []
    details += extra.pop("details", [])
    error = {"code": status, "message": message or _MESSAGES.get(status, "Error"), "status": _GRPC_STATUS.get(status)}
    return {"error": {**error, "details": details} if details else error}


@dataclass(frozen=True)
class ServiceAccount:
    """A Google service account of the test's own making: its JSON and its public key."""

    project_id: str
    client_email: str
    private_key_id: str
    private_key_pem: str
    public_key_pem: str

    def info(self, token_uri: str) -> dict[str, str]:
        """The service-account JSON, pointing its ``token_uri`` at an emulator."""
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_key_pem,
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "universe_domain": "googleapis.com",
        }


def generate_service_account(project_id: str = "switchboard-emulator", name: str = "switchboard") -> ServiceAccount:
    """A fresh RSA-2048 service account (about 0.1 s: share one per test session)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ServiceAccount(
        project_id=project_id,
        client_email=f"{name}@{project_id}.iam.gserviceaccount.com",
        private_key_id=secrets.token_hex(20),
        private_key_pem=private.decode(),
        public_key_pem=public.decode(),
    )


@dataclass(frozen=True)
class _Grant:
    client_email: str
    project_id: str
    expires_at: float


class FcmEmulator(Emulator):
    """FCM v1 send plus the OAuth token endpoint; ``unregister`` and ``set_token_error`` script tokens."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._state = threading.Lock()
        self._accounts: dict[str, ServiceAccount] = {}
        self._grants: dict[str, _Grant] = {}
        self.token_errors: dict[str, str] = {}

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def trust(self, account: ServiceAccount) -> dict[str, str]:
        """Accept assertions signed by ``account``; returns its JSON pointing at this emulator."""
        with self._state:
            self._accounts[account.client_email] = account
        return account.info(self.token_uri)

    def unregister(self, *tokens: str) -> None:
        """Make sends to these device tokens fail 404 UNREGISTERED."""
        for token in tokens:
            self.set_token_error(token, "UNREGISTERED")

    def set_token_error(self, token: str, error_code: str) -> None:
        """UNREGISTERED (404), SENDER_ID_MISMATCH (403) or INVALID_ARGUMENT (400, a malformed token)."""
        self.token_errors[token] = error_code

    def expire_tokens(self) -> None:
        """Every access token issued so far is now expired (401 ACCESS_TOKEN_EXPIRED)."""
        with self._state:
            self._grants = {t: _Grant(g.client_email, g.project_id, 0.0) for t, g in self._grants.items()}

    @property
    def issued_tokens(self) -> list[str]:
        with self._state:
            return list(self._grants)

    def route(self, method: str, path: str) -> str | None:
        if method != "POST":
            return None
        if path == "/token":
            return "token"
        return "send" if _SEND_PATH.match(path) else None

    def not_found(self, request: RecordedRequest) -> Reply:
        return Reply.json(404, fcm_error(404, message=f"The requested URL {request.path} was not found."))

    def respond(self, endpoint: str, request: RecordedRequest) -> Reply:
        return self._token(request) if endpoint == "token" else self._send(request)

    def error(
        self,
        status: int,
        *,
        retry_after: float | None = None,
        error_code: str | None = "default",
        message: str | None = None,
    ) -> Scripted:
        """FCM's error for ``status``; ``error_code`` defaults to FCM's code for it, None leaves it out."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        code = _FCM_CODES.get(status) if error_code == "default" else error_code
        return Scripted(Reply.json(status, fcm_error(status, code, message), headers))

    def token_error(self, status: int, error: str, description: str) -> Scripted:
        """A scripted answer of the token endpoint: ``script(..., endpoint="token")``."""
        return Scripted(Reply.json(status, {"error": error, "error_description": description}))

    # -- the OAuth token endpoint -------------------------------------------------------
    def _token(self, request: RecordedRequest) -> Reply:
        if request.form_value("grant_type") != JWT_BEARER:
            return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {request.form_value('grant_type')}")
        assertion = request.form_value("assertion") or ""
        try:
            claims = jwt.decode(assertion, verify=False)  # type: ignore[no-untyped-call]
        except (ValueError, auth_exceptions.GoogleAuthError):
            return _oauth_error("invalid_grant", "Invalid JWT: malformed assertion.")
        with self._state:
            account = self._accounts.get(str(claims.get("iss")))
        if account is None:
            return _oauth_error("invalid_grant", "Invalid grant: account not found")
        try:
            jwt.decode(  # type: ignore[no-untyped-call]
                assertion,
                certs={account.private_key_id: account.public_key_pem},
                audience=[GOOGLE_TOKEN_URI, self.token_uri],
            )
        except (ValueError, auth_exceptions.GoogleAuthError):
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        if not SCOPES & set(str(claims.get("scope", "")).split()):
            return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token = "ya29.emulator-" + secrets.token_urlsafe(24)
        with self._state:
            self._grants[token] = _Grant(account.client_email, account.project_id, time.time() + 3599)
        return Reply.json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # -- FCM v1 send ----------------------------------------------------------------------
    def _send(self, request: RecordedRequest) -> Reply:
        with self._state:
            grant = self._grants.get(request.bearer or "")
        if grant is None:
            return Reply.json(401, fcm_error(401))
        if grant.expires_at < time.time():
            expired = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_EXPIRED"}
            return Reply.json(401, fcm_error(401, details=[expired]))
        match = _SEND_PATH.match(request.path)
        project = match["project"] if match else ""
        if project != grant.project_id:
            resource = f"//cloudresourcemanager.googleapis.com/projects/{project}"
            denied = f"Permission 'cloudmessaging.messages.create' denied on resource '{resource}'"
            return Reply.json(403, fcm_error(403, message=denied))
        body = request.json if isinstance(request.json, dict) else {}
        message = body.get("message")
        problem = validate_message(message)
        if problem is not None or not isinstance(message, dict):
            return Reply.json(400, problem or fcm_error(400, "INVALID_ARGUMENT"))
        token_error = self.token_errors.get(str(message.get("token")))
        if "token" in message and token_error is not None:
            status = {"UNREGISTERED": 404, "SENDER_ID_MISMATCH": 403}.get(token_error, 400)
            text = INVALID_TOKEN if token_error == "INVALID_ARGUMENT" else None
            return Reply.json(status, fcm_error(status, token_error, text))
        message_id = (
            "fake_message_id" if body.get("validate_only") else f"0:{time.time_ns() // 1000}%{secrets.token_hex(8)}"
        )
        return Reply.json(200, {"name": f"projects/{project}/messages/{message_id}"})


def validate_message(message: Any) -> dict[str, Any] | None:
    """FCM's 400 INVALID_ARGUMENT body for the first problem of a ``message``, or None."""
    if not isinstance(message, dict):
        return fcm_error(400, "INVALID_ARGUMENT", 'Invalid JSON payload received. Unknown name "message".')
    targets = [key for key in ("token", "topic", "condition") if key in message]
    if not targets:
        return fcm_error(400, "INVALID_ARGUMENT", "Recipient of the message is not set.")
    if len(targets) > 1:
        return fcm_error(400, "INVALID_ARGUMENT", "Exactly one of message.token, message.topic or message.condition.")
    if "topic" in message and not _TOPIC.match(str(message["topic"])):
        return fcm_error(400, "INVALID_ARGUMENT", "Invalid topic name.")
    data = message.get("data", {})
    if not isinstance(data, dict):
        return fcm_error(
            400, "INVALID_ARGUMENT", "Invalid value at 'message.data' (type.googleapis.com/google.protobuf.Struct)"
        )
    for index, value in enumerate(data.values()):
        if not isinstance(value, str):
            field = f"message.data[{index}].value"
            text = f"Invalid value at '{field}' (TYPE_STRING), {json.dumps(value)}"
            violation = {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": text}],
            }
            return fcm_error(400, "INVALID_ARGUMENT", text, details=[violation])
    limit = 2048 if "topic" in message else 4096
    if len(json.dumps(message, separators=(",", ":")).encode()) > limit:
        return fcm_error(400, "INVALID_ARGUMENT", "Android message is too big")
    return None


def _oauth_error(error: str, description: str) -> Reply:
    return Reply.json(400, {"error": error, "error_description": description})
