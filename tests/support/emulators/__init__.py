"""Local emulators of SendGrid, Twilio, Vonage and FCM: the real SDKs talk to them over real HTTP.

Each records every request and can be scripted per test (``emulator.script(...)``);
``python -m tests.support.emulators`` runs all three for manual use and benchmarks.
"""

from tests.support.emulators.base import Emulator, RecordedRequest, Reply, Scripted
from tests.support.emulators.elasticsearch import ElasticsearchEmulator
from tests.support.emulators.fcm import FcmEmulator, ServiceAccount, generate_service_account
from tests.support.emulators.sendgrid import SendGridEmulator
from tests.support.emulators.twilio import TwilioEmulator
from tests.support.emulators.vonage import VonageEmulator

__all__ = [
    "ElasticsearchEmulator",
    "Emulator",
    "FcmEmulator",
    "RecordedRequest",
    "Reply",
    "Scripted",
    "SendGridEmulator",
    "ServiceAccount",
    "TwilioEmulator",
    "VonageEmulator",
    "generate_service_account",
]
