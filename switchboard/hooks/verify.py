"""Checking that a webhook request comes from the provider, before anything else reads it.

SendGrid signs its Event Webhook with ECDSA P-256 over the timestamp header followed by the
raw body (verified as received, never re-serialised); Twilio signs with HMAC-SHA1 over the
full URL it called followed by the sorted form parameters. Both checks are the providers'
own SDK helpers.
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Callable, Mapping, Sequence

from cryptography.exceptions import UnsupportedAlgorithm
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from twilio.request_validator import RequestValidator

from switchboard.errors import SettingsError

SENDGRID_SIGNATURE = EventWebhookHeader.SIGNATURE
SENDGRID_TIMESTAMP = EventWebhookHeader.TIMESTAMP
TWILIO_SIGNATURE = "X-Twilio-Signature"


class Refused(Exception):
    """A request that is not from the provider (403), a replay (403), or not readable (400)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class SendGridVerifier:
    """Checks a SendGrid Event Webhook request: signed timestamp within ``tolerance``, signature."""

    def __init__(self, public_key: str, *, tolerance: float, clock: Callable[[], float] = time.time) -> None:
        self._webhook = EventWebhook()
        try:
            self._key = self._webhook.convert_public_key_to_ecdsa(public_key.strip())
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SettingsError(
                "switchboard.sendgrid.webhook_public_key is not a public key (paste the base64 key "
                "SendGrid shows for the signed Event Webhook)"
            ) from None
        self.tolerance = tolerance
        self.clock = clock

    def check(self, body: bytes, signature: str | None, timestamp: str | None) -> None:
        """Return when the request is SendGrid's and fresh; raise Refused otherwise."""
        if not signature or not timestamp:
            raise Refused(403, "unsigned")
        try:
            signed_at = int(timestamp)
        except ValueError:
            raise Refused(403, "bad timestamp") from None
        if abs(self.clock() - signed_at) > self.tolerance:
            raise Refused(403, "timestamp outside the tolerance (a replay?)")
        try:
            payload = body.decode("utf-8")
            valid = self._webhook.verify_signature(payload, signature, timestamp, self._key)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            valid = False
        if not valid:
            raise Refused(403, "bad signature")


class TwilioVerifier:
    """Checks ``X-Twilio-Signature`` against the public URL Twilio called and the form it posted."""

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def check(self, url: str, form: Mapping[str, Sequence[str]], signature: str | None) -> None:
        if not signature:
            raise Refused(403, "unsigned")
        if not self._validator.validate(url, _MultiDict(form), signature):
            raise Refused(403, "bad signature")


class _MultiDict(dict[str, list[str]]):
    """A form with repeated names, as RequestValidator reads one (``getlist``)."""

    def __init__(self, form: Mapping[str, Sequence[str]]) -> None:
        super().__init__({name: list(values) for name, values in form.items()})

    def getlist(self, name: str) -> list[str]:
        return self[name]
