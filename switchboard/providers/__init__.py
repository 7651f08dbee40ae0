"""The providers: one class per SDK, each built from its typed config, each ``send`` classified.

Failures raise the errors of ``switchboard.errors``; nothing here retries.
"""

from switchboard.channels import Channel
from switchboard.providers.base import (
    EmailMessage,
    EmailResult,
    Provider,
    ProviderResult,
    PushMessage,
    PushOutcome,
    PushResult,
    RecipientRefusal,
    SmsMessage,
)
from switchboard.providers.fcm import FcmConfig, FcmProvider
from switchboard.providers.sendgrid import SendGridConfig, SendGridProvider
from switchboard.providers.smtp import SmtpConfig, SmtpProvider, SmtpSecurity
from switchboard.providers.twilio import TwilioConfig, TwilioProvider
from switchboard.providers.vonage import VonageConfig, VonageProvider

__all__ = [
    "Channel",
    "EmailMessage",
    "EmailResult",
    "FcmConfig",
    "FcmProvider",
    "Provider",
    "ProviderResult",
    "PushMessage",
    "PushOutcome",
    "PushResult",
    "RecipientRefusal",
    "SendGridConfig",
    "SendGridProvider",
    "SmsMessage",
    "SmtpConfig",
    "SmtpProvider",
    "SmtpSecurity",
    "TwilioConfig",
    "TwilioProvider",
    "VonageConfig",
    "VonageProvider",
]
