"""Webhooks the provider emulators send back, signed as the real providers sign them.

SendGrid: batches of events, ECDSA P-256 / SHA-256 over timestamp + raw body with a key pair
the test makes (:func:`webhook_keys`). Twilio: one form post per status change, HMAC-SHA1 with
the auth token over the URL and the sorted parameters (the SDK's own ``compute_signature``).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
# Loopback only, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class WebhookKeys:
    """A SendGrid Event Webhook key pair: the private half signs, ``public_key`` goes in the settings."""

    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> str:
        """Base64 DER, as SendGrid's settings page shows it."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: str) -> str:
        signature = self.private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()


def webhook_keys() -> WebhookKeys:
    return WebhookKeys(ec.generate_private_key(ec.SECP256R1()))


@dataclass(frozen=True)
class Posted:
    """What the receiver answered."""

    status: int
    body: bytes


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> Posted:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Posted(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return Posted(exc.code, exc.read())


def post_sendgrid(
    url: str, events: list[dict[str, Any]], keys: WebhookKeys, *, timestamp: float | None = None
) -> Posted:
    """One signed Event Webhook batch."""
    body = json.dumps(events).encode()
    stamp = str(int(time.time() if timestamp is None else timestamp))
    headers = {
        "Content-Type": "application/json",
        SENDGRID_SIGNATURE: keys.sign(body, stamp),
        SENDGRID_TIMESTAMP: stamp,
    }
    return post(url, body, headers)


def post_twilio(url: str, params: dict[str, str], auth_token: str) -> Posted:
    """One signed Twilio webhook (status callback or incoming SMS)."""
    signature = RequestValidator(auth_token).compute_signature(url, params)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return post(url, urlencode(params).encode(), headers)
