"""A second baseline for the switchboard: the providers' official SDKs called directly.

What an app would write without the switchboard: ``SendGridAPIClient.send`` with the
``Mail`` helper, Twilio's ``Client.messages.create`` over a keep-alive ``TwilioHttpClient``,
and pyfcm's ``FCMNotification.notify``, each pointed at the emulators as
``shared/docs/providers.md`` says, called from as many threads as the switchboard keeps
sends in flight (the SDKs block), sending the same messages rendered ahead. The other
baseline (``direct``) is stricter: the switchboard's own provider classes on one event loop.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from google.oauth2 import service_account
from pyfcm import FCMNotification
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Content, Mail, To
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bench.notifications import SMS_SENDER, Message, board_settings, channel_of, rendered
from bench.systems.base import ChildSpec, Stop
from bench.workload import Handler
from switchboard.providers import EmailMessage, PushMessage, SmsMessage
from switchboard.templating import TemplateStore

TIMEOUT = 30.0
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class SdkService:
    """``concurrency`` threads take the next rendered message and hand it to its SDK."""

    def __init__(self, spec: ChildSpec, handler: Handler) -> None:
        config = json.loads(spec.config)
        endpoints: dict[str, dict[str, str]] = config["endpoints"]
        settings = board_settings(endpoints)
        channel: str = config["channel"]
        self.handler = handler
        self.threads = spec.concurrency or settings.concurrency
        sendgrid, twilio, fcm = endpoints["sendgrid"], endpoints["twilio"], endpoints["fcm"]
        self.sendgrid = SendGridAPIClient(sendgrid["api_key"], host=sendgrid["base_url"])
        self.sendgrid.client.timeout = TIMEOUT
        self.twilio = Client(
            twilio["account_sid"],
            twilio["auth_token"],
            http_client=TwilioHttpClient(timeout=TIMEOUT, pool_connections=True),
            environment={},
        )
        self.twilio.api.base_url = twilio["base_url"]
        credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            fcm["service_account_file"], scopes=[FCM_SCOPE]
        ).with_token_uri(fcm["token_uri"])
        self.fcm = FCMNotification(credentials=credentials, project_id=credentials.project_id)
        self.fcm.FCM_END_POINT_BASE = f"{fcm['base_url']}/v1/projects"
        store = TemplateStore(settings.templates_dir, default_locale=settings.default_locale, refresh_interval=None)
        self.messages: list[Message] = [
            rendered(store, settings, channel_of(channel, seq), seq) for seq in range(config["count"])
        ]
        self._next = 0
        self._lock = threading.Lock()
        self.errors = 0
        self.first_error = ""

    def run(self, stop: Stop) -> None:
        senders = [threading.Thread(target=self._send_all, name=f"sdk-{n}") for n in range(self.threads)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        for _ in self.messages:
            self.handler({})
        stop.wait()

    def _send_all(self) -> None:
        while True:
            with self._lock:
                if self._next >= len(self.messages):
                    return
                message = self.messages[self._next]
                self._next += 1
            try:
                self._send(message)
            except Exception as exc:  # counted and reported: the parent checks there were none
                with self._lock:
                    self.errors += 1
                    self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"

    def _send(self, message: Message) -> None:
        if isinstance(message, EmailMessage):
            mail = Mail(from_email=message.from_email, to_emails=[To(a) for a in message.to], subject=message.subject)
            if message.text:
                mail.add_content(Content("text/plain", message.text))
            if message.html:
                mail.add_content(Content("text/html", message.html))
            self.sendgrid.send(mail)
        elif isinstance(message, SmsMessage):
            self.twilio.messages.create(to=message.to, from_=SMS_SENDER, body=message.body)
        elif isinstance(message, PushMessage):
            for token in message.tokens:
                self.fcm.notify(
                    fcm_token=token,
                    notification_title=message.title,
                    notification_body=message.body,
                    data_payload=message.data or None,
                )

    def summary(self) -> dict[str, Any]:
        return {"errors": self.errors, "first_error": self.first_error}


class SdkSystem:
    """Used through worker processes only: the messages are in each process's own list."""

    name = "sdks"
    roles = ("email", "sms", "push", "mixed")

    def prepare(self, url: str) -> None:
        """Nothing: no Redis."""

    def service(self, spec: ChildSpec, handler: Handler) -> SdkService:
        return SdkService(spec, handler)
