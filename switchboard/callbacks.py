"""What a send carries so the provider's webhooks come back naming their delivery.

SendGrid returns every ``custom_args`` key of a send in each of its events; Twilio calls the
``StatusCallback`` URL given with the message, signing that URL (query included) with the
account's auth token, so the delivery id in it is as trustworthy as the callback itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from switchboard.settings import SwitchboardSettings

DELIVERY_ARG = "switchboard_delivery_id"
"""The custom arg (SendGrid) holding the delivery id."""
DELIVERY_PARAM = "delivery"
"""The query parameter of the Twilio StatusCallback URL holding the delivery id."""
TWILIO_STATUS_PATH = "/hooks/twilio/status"


def custom_args(delivery_id: str) -> dict[str, str]:
    """SendGrid ``custom_args`` of a send: its delivery id comes back in every event."""
    return {DELIVERY_ARG: delivery_id}


def status_callback(settings: SwitchboardSettings, delivery_id: str) -> str | None:
    """Twilio's StatusCallback for a send; None (no callbacks) without ``[switchboard] public_url``
    or with the Twilio hook disabled."""
    if not settings.public_url or "twilio" not in settings.hooks.enabled:
        return None
    return f"{settings.public_url.rstrip('/')}{TWILIO_STATUS_PATH}?{urlencode({DELIVERY_PARAM: delivery_id})}"
