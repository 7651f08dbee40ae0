"""The switchboard's settings: the ``[switchboard]`` table of ``settings.toml`` plus environment secrets.

Read by the same loader as the bus's own tables (``bus.settings_loader``). Provider
credentials live here and nowhere else; a channel whose provider has no credentials sends
to the local outbox (dev mode). Each provider's table is that provider's own config class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bus.errors import ConfigurationError
from bus.safejson import read_json
from bus.settings_loader import SettingsTable, apply, load
from switchboard.addresses import address_of
from switchboard.admission import RateLimitSettings
from switchboard.categories import DEFAULT_CATEGORIES, Category, parse_categories
from switchboard.channels import Channel
from switchboard.circuits import CircuitSettings
from switchboard.countries import check_regions
from switchboard.errors import SettingsError
from switchboard.hooks.config import HooksSettings
from switchboard.providers import FcmConfig, SendGridConfig, SmtpConfig, TwilioConfig, VonageConfig
from switchboard.quiet_hours import QuietHoursSettings
from switchboard.unsubscribe import UnsubscribeSettings

SWITCHBOARD_TABLE = SettingsTable(
    "switchboard",
    {
        "SWITCHBOARD_SENDGRID_API_KEY": "sendgrid.api_key",
        "SWITCHBOARD_SENDGRID_BASE_URL": "sendgrid.base_url",
        "SWITCHBOARD_SENDGRID_WEBHOOK_PUBLIC_KEY": "sendgrid.webhook_public_key",
        "SWITCHBOARD_PUBLIC_URL": "public_url",
        "SWITCHBOARD_UNSUBSCRIBE_SECRET": "unsubscribe.secret",
        "SWITCHBOARD_TWILIO_ACCOUNT_SID": "twilio.account_sid",
        "SWITCHBOARD_TWILIO_AUTH_TOKEN": "twilio.auth_token",
        "SWITCHBOARD_TWILIO_FROM_NUMBER": "twilio.from_number",
        "SWITCHBOARD_TWILIO_BASE_URL": "twilio.base_url",
        "SWITCHBOARD_FCM_SERVICE_ACCOUNT_FILE": "fcm.service_account_file",
        "SWITCHBOARD_FCM_SERVICE_ACCOUNT_JSON": "fcm.service_account_json",
        "SWITCHBOARD_FCM_BASE_URL": "fcm.base_url",
        "SWITCHBOARD_FCM_TOKEN_URI": "fcm.token_uri",
        "SWITCHBOARD_SMTP_HOST": "smtp.host",
        "SWITCHBOARD_SMTP_USERNAME": "smtp.username",
        "SWITCHBOARD_SMTP_PASSWORD": "smtp.password",
        "SWITCHBOARD_VONAGE_API_KEY": "vonage.api_key",
        "SWITCHBOARD_VONAGE_API_SECRET": "vonage.api_secret",
        "SWITCHBOARD_VONAGE_FROM_NUMBER": "vonage.from_number",
        "SWITCHBOARD_VONAGE_BASE_URL": "vonage.base_url",
    },
)
"""Environment variables that override secrets (and the odd non-secret) from the file."""


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How sends that failed for a passing reason (429, 5xx, network) are retried."""

    max_retries: int = 8
    base_delay: float = 5.0
    max_delay: float = 3600.0
    configuration_delay: float = 300.0
    """Wait before probing a channel (or sender) whose configuration the provider refused."""
    ambiguous_retries: int = 1
    """Tries again after a timeout that came once the provider had the request (it may have sent
    the message: another try can send it twice). 0 records such a send ``unknown`` at once."""

    def __post_init__(self) -> None:
        _at_least("retry.max_retries", self.max_retries, 0)
        _at_least("retry.base_delay", self.base_delay, 0)
        _at_least("retry.max_delay", self.max_delay, 0)
        _positive("retry.configuration_delay", self.configuration_delay)
        _at_least("retry.ambiguous_retries", self.ambiguous_retries, 0)


PROVIDERS: dict[Channel, tuple[str, ...]] = {
    Channel.EMAIL: ("sendgrid", "smtp"),
    Channel.SMS: ("twilio", "vonage"),
    Channel.PUSH: ("fcm",),
}
"""The providers each channel can use, in the order used when a channel names none."""


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """``[switchboard.email]`` / ``[switchboard.push]``: a channel's providers and its per-recipient limit."""

    providers: tuple[str, ...] = ()
    """In the order tried; empty: every configured provider of the channel, in PROVIDERS order."""
    failover_on_timeout: bool = False
    """Also fail over when a provider took the message and did not answer (may send it twice)."""
    recipient_limit: int = 0
    """Messages one recipient may get per ``recipient_window`` seconds on this channel; 0: no limit."""
    recipient_window: float = 3600.0

    def __post_init__(self) -> None:
        _at_least("recipient_limit", self.recipient_limit, 0)
        _positive("recipient_window", self.recipient_window)
        if len(set(self.providers)) != len(self.providers):
            raise SettingsError("switchboard: a channel names the same provider twice")


@dataclass(frozen=True, slots=True)
class SmsChannelSettings(ChannelSettings):
    """``[switchboard.sms]``: also the countries SMS may go to (the defence against SMS pumping)."""

    allowed_countries: tuple[str, ...] = ()
    """ISO 3166 region codes ("US", "GB"); empty: every country."""

    def __post_init__(self) -> None:
        ChannelSettings.__post_init__(self)
        check_regions(self.allowed_countries)


@dataclass(frozen=True, slots=True)
class SwitchboardSettings:
    """Everything the switchboard needs besides the bus itself."""

    app_key: str = "switchboard"
    templates_dir: Path = Path("templates")
    default_locale: str = "en"
    senders: tuple[str, ...] = ("Switchboard <no-reply@example.com>",)
    """Allowed ``from`` addresses; the first is the default sender."""
    delivery_retention_days: float = 30.0
    outbox_size: int = 500
    concurrency: int = 100
    """Sends in flight per ``switchboard run`` process: provider calls at once, on its event loop, not
    threads (its worker rides a quarter more events around them: ``in_flight``)."""
    template_refresh_seconds: float = 2.0
    public_url: str | None = None
    """Where the internet reaches ``switchboard hooks`` (``https://hooks.example.com``): Twilio signs the
    URL it calls, so behind a proxy the signature is checked against this one; unsubscribe links point there."""
    hooks: HooksSettings = field(default_factory=HooksSettings)
    unsubscribe: UnsubscribeSettings = field(default_factory=UnsubscribeSettings)
    sendgrid: SendGridConfig = field(default_factory=SendGridConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    fcm: FcmConfig = field(default_factory=FcmConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    vonage: VonageConfig = field(default_factory=VonageConfig)
    email: ChannelSettings = field(default_factory=lambda: ChannelSettings(recipient_limit=20))
    sms: SmsChannelSettings = field(default_factory=lambda: SmsChannelSettings(recipient_limit=5))
    push: ChannelSettings = field(default_factory=ChannelSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    circuit: CircuitSettings = field(default_factory=CircuitSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    quiet_hours: QuietHoursSettings = field(default_factory=QuietHoursSettings)
    categories: Mapping[str, Category] = field(
        default_factory=lambda: DEFAULT_CATEGORIES, metadata={"parse": parse_categories}
    )
    """``[switchboard.categories.<name>]``: a table here replaces the four defaults as a whole."""

    def __post_init__(self) -> None:
        if not self.senders:
            raise SettingsError("switchboard.senders needs at least one address")
        for sender in self.senders:
            if "@" not in parseaddr(sender)[1]:
                raise SettingsError(f"switchboard.senders: {sender!r} has no email address")
        _positive("delivery_retention_days", self.delivery_retention_days)
        _positive("outbox_size", self.outbox_size)
        _positive("concurrency", self.concurrency)
        _positive("template_refresh_seconds", self.template_refresh_seconds)
        if self.public_url and not self.public_url.startswith(("https://", "http://")):
            raise SettingsError("switchboard.public_url must be an http(s) URL")
        for channel, known in PROVIDERS.items():
            unknown = [name for name in self.channel(channel).providers if name not in known]
            if unknown:
                raise SettingsError(
                    f"switchboard.{channel}.providers: unknown {', '.join(map(repr, unknown))} "
                    f"(a {channel} provider is one of {', '.join(known)})"
                )

    @classmethod
    def from_table(cls, values: Mapping[str, Any], source: str = "settings") -> SwitchboardSettings:
        """Settings from a ``[switchboard]`` table given as a mapping (apps and tests that build them in code)."""
        return _checked(lambda: apply(cls(), values, source, table="switchboard"))

    @property
    def retention_seconds(self) -> int:
        return int(self.delivery_retention_days * 86400)

    @property
    def default_sender(self) -> str:
        return self.senders[0]

    def sender_allowed(self, sender: str) -> bool:
        address = address_of(sender).lower()
        return any(address_of(allowed).lower() == address for allowed in self.senders)

    def channel(self, channel: Channel) -> ChannelSettings:
        """The ``[switchboard.<channel>]`` table."""
        return {Channel.EMAIL: self.email, Channel.SMS: self.sms, Channel.PUSH: self.push}[channel]

    def configured(self, provider: str) -> bool:
        config: SendGridConfig | TwilioConfig | FcmConfig | SmtpConfig | VonageConfig = getattr(self, provider)
        return config.configured

    def provider_chain(self, channel: Channel) -> tuple[str, ...]:
        """The providers a channel sends through, in order; () means dev mode (the outbox).

        A channel naming providers of which only some are configured is refused: a failover
        chain with a hole would show only during an outage.
        """
        named = self.channel(channel).providers
        if not named:
            return tuple(name for name in PROVIDERS[channel] if self.configured(name))
        missing = [name for name in named if not self.configured(name)]
        if missing and len(missing) < len(named):
            raise SettingsError(
                f"switchboard.{channel}.providers names {', '.join(missing)} without credentials "
                f"([switchboard.{missing[0]}])"
            )
        return () if missing else named

    def secrets(self) -> list[str]:
        """Every credential these settings hold (for log redaction): API keys, auth tokens, the FCM
        service account's JSON and its private key (from the file too)."""
        held = (
            self.sendgrid.api_key,
            self.twilio.auth_token,
            self.smtp.password,
            self.vonage.api_secret,
            self.unsubscribe.secret,
        )
        found = [s.reveal() for s in held if s is not None]
        account = self.fcm.service_account_json.reveal() if self.fcm.service_account_json else None
        if account is None and self.fcm.service_account_file is not None:
            try:
                account = self.fcm.service_account_file.read_text(encoding="utf-8")
            except OSError:
                account = None
        if account:
            found.append(account)
            try:
                info = read_json(account)
            except ValueError:
                info = None
            if isinstance(info, dict):
                found += [str(info[k]) for k in ("private_key", "private_key_id") if info.get(k)]
                found += [line for line in str(info.get("private_key", "")).splitlines() if len(line) > 20]
        return found

    def live_channels(self) -> dict[Channel, str]:
        """Which provider each channel uses first: its name, or ``outbox`` in dev mode."""
        return {channel: next(iter(self.provider_chain(channel)), "outbox") for channel in Channel}


def load_switchboard_settings(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> SwitchboardSettings:
    """The ``[switchboard]`` table of the settings file (as the bus finds it), then environment secrets."""
    return _checked(lambda: load(SwitchboardSettings, SWITCHBOARD_TABLE, path, environ=environ))


def _checked(build: Any) -> SwitchboardSettings:
    try:
        settings: SwitchboardSettings = build()
    except ConfigurationError as exc:
        raise SettingsError(str(exc)) from None
    return settings


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not value > 0:
        raise SettingsError(f"switchboard.{name} must be greater than 0")


def _at_least(name: str, value: float, low: float) -> None:
    if isinstance(value, bool) or value < low:
        raise SettingsError(f"switchboard.{name} must be at least {low:g}")


def problems_of(exc: ValidationError, what: str) -> list[str]:
    """Pydantic's errors as ``field: reason`` lines, without the input values (secrets, personal data)."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or what
        problems.append(f"{where}: {error['msg']}")
    return problems


def describe(exc: ValidationError, what: str) -> str:
    """Pydantic's errors in one line, without the input values."""
    return f"invalid {what}: " + "; ".join(problems_of(exc, what))
