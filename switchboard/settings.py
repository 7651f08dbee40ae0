"""The switchboard's settings: the ``[switchboard]`` table of ``settings.toml`` plus environment secrets.

The only place that reads the environment. Provider credentials live here and nowhere
else; a channel without credentials sends to the local outbox (dev mode).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bus.errors import ConfigurationError
from bus.settings_loader import find_settings_file, read_table
from switchboard.channels import Channel
from switchboard.errors import SettingsError
from switchboard.providers import FcmConfig, SendGridConfig, TwilioConfig

# Environment variables that override secrets (and the odd non-secret) from the file.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "SWITCHBOARD_SENDGRID_API_KEY": ("sendgrid", "api_key"),
    "SWITCHBOARD_SENDGRID_BASE_URL": ("sendgrid", "base_url"),
    "SWITCHBOARD_TWILIO_ACCOUNT_SID": ("twilio", "account_sid"),
    "SWITCHBOARD_TWILIO_AUTH_TOKEN": ("twilio", "auth_token"),
    "SWITCHBOARD_TWILIO_FROM_NUMBER": ("twilio", "from_number"),
    "SWITCHBOARD_TWILIO_BASE_URL": ("twilio", "base_url"),
    "SWITCHBOARD_FCM_SERVICE_ACCOUNT_FILE": ("fcm", "service_account_file"),
    "SWITCHBOARD_FCM_SERVICE_ACCOUNT_JSON": ("fcm", "service_account_json"),
    "SWITCHBOARD_FCM_BASE_URL": ("fcm", "base_url"),
    "SWITCHBOARD_FCM_TOKEN_URI": ("fcm", "token_uri"),
}


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SendGridSection(_Section):
    """Email through SendGrid; without ``api_key`` email goes to the outbox."""

    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout: float = Field(default=10.0, gt=0)


class TwilioSection(_Section):
    """SMS through Twilio; without ``account_sid`` and ``auth_token`` SMS goes to the outbox."""

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    base_url: str | None = None
    timeout: float = Field(default=10.0, gt=0)


class FcmSection(_Section):
    """Push through FCM; without a service account push goes to the outbox."""

    service_account_file: Path | None = None
    service_account_json: SecretStr | None = None
    token_uri: str | None = None
    base_url: str | None = None
    timeout: float = Field(default=10.0, gt=0)


class RetrySection(_Section):
    """How sends that failed for a passing reason (429, 5xx, network) are retried."""

    max_retries: int = Field(default=8, ge=0)
    base_delay: float = Field(default=5.0, ge=0)
    max_delay: float = Field(default=3600.0, ge=0)
    configuration_delay: float = Field(default=300.0, gt=0)
    """Wait before retrying a channel whose credentials were rejected."""


class SwitchboardSettings(_Section):
    """Everything the switchboard needs besides the bus itself."""

    app_key: str = "switchboard"
    templates_dir: Path = Path("templates")
    default_locale: str = "en"
    senders: list[str] = Field(default_factory=lambda: ["Switchboard <no-reply@example.com>"], min_length=1)
    """Allowed ``from`` addresses; the first is the default sender."""
    delivery_retention_days: float = Field(default=30.0, gt=0)
    outbox_size: int = Field(default=500, gt=0)
    concurrency: int = Field(default=8, gt=0)
    template_refresh_seconds: float = Field(default=2.0, gt=0)
    sendgrid: SendGridSection = Field(default_factory=SendGridSection)
    twilio: TwilioSection = Field(default_factory=TwilioSection)
    fcm: FcmSection = Field(default_factory=FcmSection)
    retry: RetrySection = Field(default_factory=RetrySection)

    @field_validator("senders")
    @classmethod
    def _senders_are_addresses(cls, senders: list[str]) -> list[str]:
        for sender in senders:
            if "@" not in parseaddr(sender)[1]:
                raise ValueError(f"sender {sender!r} has no email address")
        return senders

    @property
    def retention_seconds(self) -> int:
        return int(self.delivery_retention_days * 86400)

    @property
    def default_sender(self) -> str:
        return self.senders[0]

    def sender_allowed(self, sender: str) -> bool:
        address = parseaddr(sender)[1].lower()
        return any(parseaddr(allowed)[1].lower() == address for allowed in self.senders)

    def sendgrid_config(self) -> SendGridConfig | None:
        s = self.sendgrid
        if s.api_key is None or not s.api_key.get_secret_value():
            return None
        return SendGridConfig(api_key=s.api_key, from_email=self.default_sender, base_url=s.base_url, timeout=s.timeout)

    def twilio_config(self) -> TwilioConfig | None:
        t = self.twilio
        if not t.account_sid or t.auth_token is None or not t.auth_token.get_secret_value():
            return None
        return TwilioConfig(
            account_sid=t.account_sid,
            auth_token=t.auth_token,
            from_number=t.from_number,
            messaging_service_sid=t.messaging_service_sid,
            status_callback=t.status_callback,
            base_url=t.base_url,
            timeout=t.timeout,
        )

    def fcm_config(self) -> FcmConfig | None:
        f = self.fcm
        if f.service_account_file is None and f.service_account_json is None:
            return None
        return FcmConfig(
            service_account_file=f.service_account_file,
            service_account_json=f.service_account_json,
            token_uri=f.token_uri,
            base_url=f.base_url,
            timeout=f.timeout,
        )

    def live_channels(self) -> dict[Channel, str]:
        """Which provider each channel uses: its name, or ``outbox`` in dev mode."""
        return {
            Channel.EMAIL: "sendgrid" if self.sendgrid_config() else "outbox",
            Channel.SMS: "twilio" if self.twilio_config() else "outbox",
            Channel.PUSH: "fcm" if self.fcm_config() else "outbox",
        }


def load_switchboard_settings(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> SwitchboardSettings:
    """The ``[switchboard]`` table of the settings file (as the bus finds it), then environment secrets."""
    env = os.environ if environ is None else environ
    file = find_settings_file(path, env)
    try:
        raw: dict[str, Any] = read_table(file, "switchboard") if file is not None else {}
    except ConfigurationError as exc:
        raise SettingsError(str(exc)) from None
    for variable, (section, key) in ENVIRONMENT.items():
        if env.get(variable):
            raw.setdefault(section, {})
            if not isinstance(raw[section], dict):
                raise SettingsError(f"[switchboard.{section}] must be a table")
            raw[section] = {**raw[section], key: env[variable]}
    try:
        settings = SwitchboardSettings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(describe(exc, "settings")) from None
    if file is not None and not settings.templates_dir.is_absolute():
        settings = settings.model_copy(update={"templates_dir": file.resolve().parent / settings.templates_dir})
    return settings


def describe(exc: ValidationError, what: str) -> str:
    """Pydantic's errors without the input values: they may be secrets or personal data."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or what
        problems.append(f"{where}: {error['msg']}")
    return f"invalid {what}: " + "; ".join(problems)
