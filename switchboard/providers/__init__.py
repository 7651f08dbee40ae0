"""The providers: one class per SDK, each built from its typed config, each ``send`` classified.

Failures raise the errors of ``switchboard.errors``; nothing here retries.
"""

from switchboard.channels import Channel
from switchboard.providers.base import (
    EmailMessage,
    Provider,
    ProviderResult,
    PushMessage,
    PushOutcome,
    PushResult,
    SmsMessage,
)
from switchboard.providers.fcm import FcmConfig, FcmProvider
from switchboard.providers.sendgrid import SendGridConfig, SendGridProvider
from switchboard.providers.twilio import TwilioConfig, TwilioProvider

__all__ = [
    "Channel",
    "EmailMessage",
    "FcmConfig",
    "FcmProvider",
    "Provider",
    "ProviderResult",
    "PushMessage",
    "PushOutcome",
    "PushResult",
    "SendGridConfig",
    "SendGridProvider",
    "SmsMessage",
    "TwilioConfig",
    "TwilioProvider",
]
