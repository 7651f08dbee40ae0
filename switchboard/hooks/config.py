"""``[switchboard.hooks]``: which webhooks ``switchboard hooks`` serves and how hard it checks them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchboard.errors import SettingsError

if TYPE_CHECKING:
    from switchboard.settings import SwitchboardSettings

HOOKS = ("sendgrid", "twilio")


@dataclass(frozen=True, slots=True)
class HooksSettings:
    """The webhook receiver: it faces the internet, so every limit here is a defence."""

    enabled: tuple[str, ...] = HOOKS
    """``sendgrid`` (the Event Webhook), ``twilio`` (status callbacks and inbound SMS)."""
    host: str = "127.0.0.1"
    port: int = 8485
    max_body_bytes: int = 4 * 1024 * 1024
    """Bodies over this answer 413 unread (SendGrid batches of 1,000 events are about 600 KB)."""
    tolerance: float = 300.0
    """Seconds a signed SendGrid timestamp may be off our clock; older requests are replays."""
    publish_timeout: float = 5.0
    """Seconds a request waits for an unreachable Redis before answering 503 (the provider retries)."""
    body_timeout: float = 30.0
    """Seconds a request's body may take to arrive; slower answers 408 (a trickle would hold it forever)."""

    def __post_init__(self) -> None:
        unknown = [name for name in self.enabled if name not in HOOKS]
        if unknown:
            raise SettingsError(f"switchboard.hooks.enabled: unknown {', '.join(map(repr, unknown))} (one of {HOOKS})")
        for name in ("max_body_bytes", "tolerance", "publish_timeout", "body_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not value > 0:
                raise SettingsError(f"switchboard.hooks.{name} must be greater than 0")
        if not 0 <= self.port <= 65535:
            raise SettingsError("switchboard.hooks.port must be 0 to 65535")


def served(settings: SwitchboardSettings) -> list[str]:
    """What ``switchboard hooks`` serves: the enabled webhooks, and the unsubscribe links when they
    have a secret (``hooks.enabled = []`` with a secret serves the links alone)."""
    return [*settings.hooks.enabled, *(["unsubscribe links"] if settings.unsubscribe.secret else [])]


def hook_problems(settings: SwitchboardSettings) -> list[str]:
    """Why ``switchboard hooks`` cannot start with these settings (nothing: it can)."""
    found = []
    if not settings.public_url:
        found.append("switchboard.public_url is not set (the URL the providers call, and unsubscribe links name)")
    enabled = settings.hooks.enabled
    if not served(settings):
        found.append(
            "nothing to serve: switchboard.hooks.enabled names no hook and switchboard.unsubscribe.secret is not set"
        )
    if "sendgrid" in enabled and not settings.sendgrid.webhook_public_key:
        found.append(
            "the sendgrid hook needs switchboard.sendgrid.webhook_public_key (SWITCHBOARD_SENDGRID_WEBHOOK_PUBLIC_KEY)"
        )
    if "twilio" in enabled and not settings.twilio.auth_token:  # an empty token signs for anyone
        found.append("the twilio hook needs switchboard.twilio.auth_token (SWITCHBOARD_TWILIO_AUTH_TOKEN)")
    return found
