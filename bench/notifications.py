"""The switchboard's workload: realistic ``send_*`` events, the settings that point the real
providers at the emulators, and the same messages rendered ahead (for the direct baseline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import ROOT
from bus import Bus
from bus.settings_loader import Secret
from switchboard.channels import Channel
from switchboard.client import send_email, send_push, send_sms
from switchboard.events import EVENTS, SendEmail, SendPush, SendSms
from switchboard.providers import EmailMessage, FcmConfig, PushMessage, SendGridConfig, SmsMessage, TwilioConfig
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateStore

CHANNELS = ("email", "sms", "push")
MIXED = "mixed"
"""Not a channel: email, SMS and push in turn."""
TEMPLATES = {"email": "welcome", "sms": "password_reset", "push": "welcome"}
TEMPLATES_DIR = ROOT / "templates"
SMS_SENDER = "+15550001111"
_FIRST_NAMES = ("Ada", "Grace", "Hedy", "Katherine", "Margaret", "Radia", "Barbara", "Frances", "Joan", "Sophie")
_SEND = {"email": send_email, "sms": send_sms, "push": send_push}

Message = EmailMessage | SmsMessage | PushMessage


def notification(channel: str, seq: int) -> dict[str, Any]:
    """The fields of one ``send_<channel>`` event, as a publishing app passes them."""
    name = _FIRST_NAMES[seq % len(_FIRST_NAMES)]
    locale = {"locale": "fr"} if seq % 4 == 0 else {}
    if channel == "email":
        data: dict[str, Any] = {
            "first_name": name,
            "login_url": f"https://app.example.com/login?user={420_000 + seq}",
            "help_url": "https://help.example.com/getting-started",
        }
        if seq % 3:
            data["trial_days"] = 14
        return {
            "to": f"{name.lower()}.{seq % 99_991:05d}@example.com",
            "template": TEMPLATES[channel],
            "data": data,
            "categories": ["onboarding"],
            **locale,
        }
    if channel == "sms":
        code = f"{seq * 7919 % 1_000_000:06d}"
        # +1 415 555 0000-9999 for the first 10,000, then on: a million numbers, so a soak stays under
        # password_reset's own limit (3 per recipient in 15 minutes) and measures sends, not refusals.
        return {
            "to": f"+1415{5_550_000 + seq % 1_000_000:07d}",
            "template": TEMPLATES[channel],
            "data": {"code": code, "expires_minutes": 10},
            **locale,
        }
    token = f"d{seq:07d}:APA91b{seq * 2_654_435_761 % 2**64:016x}" + "Q" * 120  # FCM tokens are ~160 chars
    return {"to": [token], "template": TEMPLATES[channel], "data": {"first_name": name}, **locale}


def channel_of(channel: str, seq: int) -> str:
    """The channel of notification ``seq`` in a run of ``channel`` (``mixed``: each in turn)."""
    return CHANNELS[seq % len(CHANNELS)] if channel == MIXED else channel


def publish(bus: Bus, channel: str, seq: int) -> str:
    """Publish one event the way an app does (``switchboard.client``: validated, then published)."""
    actual = channel_of(channel, seq)
    return _SEND[actual](bus=bus, **notification(actual, seq))


def board_settings(endpoints: dict[str, dict[str, str]]) -> SwitchboardSettings:
    """Switchboard settings with every channel on its real provider, pointed at the emulators."""
    sendgrid, twilio, fcm = endpoints["sendgrid"], endpoints["twilio"], endpoints["fcm"]
    return SwitchboardSettings(
        templates_dir=TEMPLATES_DIR,
        sendgrid=SendGridConfig(api_key=Secret(sendgrid["api_key"]), base_url=sendgrid["base_url"]),
        twilio=TwilioConfig(
            account_sid=twilio["account_sid"],
            auth_token=Secret(twilio["auth_token"]),
            from_number=SMS_SENDER,
            base_url=twilio["base_url"],
        ),
        fcm=FcmConfig(
            service_account_file=Path(fcm["service_account_file"]), token_uri=fcm["token_uri"], base_url=fcm["base_url"]
        ),
    )


def rendered(store: TemplateStore, settings: SwitchboardSettings, channel: str, seq: int) -> Message:
    """The message the switchboard hands its provider for event ``seq``, built ahead of time."""
    model = EVENTS[f"send_{channel}"]
    n = model.model_validate(notification(channel, seq))
    if n.template is None:
        raise ValueError(f"send_{channel} event {seq} names no template")
    out = store.render(Channel(channel), n.template, n.data, n.locale)
    if isinstance(n, SendEmail):
        return EmailMessage(
            to=[str(a) for a in n.to],
            subject=out.subject or "",
            text=out.text,
            html=out.html,
            from_email=settings.default_sender,
            categories=list(n.categories),
        )
    if isinstance(n, SendSms):
        return SmsMessage(to=n.to, body=out.body or "")
    if isinstance(n, SendPush):
        return PushMessage(tokens=tuple(n.to), title=out.title, body=out.body, data=dict(n.data_payload))
    raise TypeError(f"no message for {type(n).__name__}")
