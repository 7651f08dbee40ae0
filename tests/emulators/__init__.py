"""Local emulators of SendGrid, Twilio and FCM: the real SDKs talk to them over real HTTP.

Each records every request and can be scripted per test (``emulator.script(...)``);
``python -m tests.emulators`` runs all three for manual use and benchmarks.
"""

from tests.emulators.base import Emulator, RecordedRequest, Reply, Scripted
from tests.emulators.elasticsearch import ElasticsearchEmulator
from tests.emulators.fcm import FcmEmulator, ServiceAccount, generate_service_account
from tests.emulators.sendgrid import SendGridEmulator
from tests.emulators.twilio import TwilioEmulator

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
    "generate_service_account",
]
