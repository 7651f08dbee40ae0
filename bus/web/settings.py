"""The dashboard's settings: where it listens and how it authenticates, loaded at the edge.

Read from the ``[web]`` table of the settings file and ``BUS_WEB_TOKEN`` /
``BUS_WEB_USERNAME`` / ``BUS_WEB_PASSWORD`` / ``BUS_WEB_SECRET_KEY``; only :func:`load_web_settings` looks at files
and the environment. A non-loopback bind address needs authentication (:func:`check_bind`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.errors import ConfigurationError
from bus.settings_loader import SettingsTable, apply, load

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8484
WEB_TABLE = SettingsTable(
    "web",
    {
        "BUS_WEB_TOKEN": "token",
        "BUS_WEB_USERNAME": "username",
        "BUS_WEB_PASSWORD": "password",
        "BUS_WEB_SECRET_KEY": "secret_key",
        "BUS_WEB_TRUSTED_PROXIES": "trusted_proxies",
        "BUS_WEB_OTEL_TRACE_URL": "otel_trace_url",
    },
)
MIN_SECRET_KEY = 32
MIN_TOKEN = 24
"""A random token this long cannot be guessed even at the throttle's pace (``secrets.token_urlsafe(24)``)."""
MIN_PASSWORD = 12


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Where the dashboard listens and the credentials it asks for (none by default)."""

    host: str = DEFAULT_HOST
    port: int = field(default=DEFAULT_PORT, metadata={"kind": "a port number"})
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    """Signs sign-in cookies and form tokens. Unset: a random key per process, so a restart
    signs everyone out and several dashboard processes do not accept each other's cookies."""
    trusted_proxies: tuple[str, ...] = field(default=(), metadata={"kind": "a list of IP addresses"})
    """Addresses of reverse proxies whose ``X-Forwarded-For``/``-Proto`` are believed. None by
    default: every client behind a proxy then shares the proxy's address (and its throttle)."""
    otel_trace_url: str | None = None
    """Where the trace view links an event's OpenTelemetry trace: a URL with ``{trace_id}`` in it
    (``https://jaeger.example.com/trace/{trace_id}``); unset, the trace id is shown without a link."""

    def __post_init__(self) -> None:
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigurationError(f"web.port must be a port number, got {self.port!r}")
        if not self.host:
            raise ConfigurationError("web.host cannot be empty")
        if bool(self.username) != bool(self.password):
            raise ConfigurationError("web.username and web.password must be set together")
        if self.token and len(self.token) < MIN_TOKEN:
            raise ConfigurationError(
                f"web.token must be at least {MIN_TOKEN} characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if self.password and len(self.password) < MIN_PASSWORD:
            raise ConfigurationError(f"web.password must be at least {MIN_PASSWORD} characters")
        for address in self.trusted_proxies:
            try:
                ipaddress.ip_network(address)
            except ValueError:
                raise ConfigurationError(f"web.trusted_proxies: {address!r} is not an IP address or network") from None
        if self.otel_trace_url is not None and (
            "{trace_id}" not in self.otel_trace_url or not self.otel_trace_url.startswith(("https://", "http://"))
        ):
            raise ConfigurationError("web.otel_trace_url must be an http(s) URL with {trace_id} in it")
        if self.secret_key is not None and len(self.secret_key) < MIN_SECRET_KEY:
            raise ConfigurationError(
                f"web.secret_key must be at least {MIN_SECRET_KEY} characters "
                "(python -c 'import secrets; print(secrets.token_hex(32))')"
            )

    @property
    def auth_required(self) -> bool:
        """True if a token or a user/password is configured (then every page asks for it)."""
        return bool(self.token) or bool(self.username and self.password)

    def signing_key(self) -> bytes | None:
        """The key cookies are signed with, from ``secret_key`` and the credentials, so that
        changing the token or password signs everyone out; None: make a random one."""
        if not self.secret_key:
            return None
        parts = (self.secret_key, self.token or "", self.username or "", self.password or "")
        return hashlib.sha256("\x00".join(parts).encode()).digest()

    def with_overrides(self, **overrides: Any) -> WebSettings:
        return apply(self, {k: v for k, v in overrides.items() if v is not None}, "override", table="web")


def load_web_settings(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> WebSettings:
    """``[web]`` of the settings file (``$BUS_SETTINGS`` or ``./settings.toml``), env, then overrides."""
    return load(WebSettings, WEB_TABLE, path, environ=environ, overrides=overrides)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(settings: WebSettings) -> None:
    """Refuse to listen beyond this machine without authentication."""
    if not is_loopback(settings.host) and not settings.auth_required:
        raise ConfigurationError(
            f"refusing to serve the dashboard on {settings.host} without authentication: set [web] token "
            "(or username and password) in the settings file, or BUS_WEB_TOKEN, or bind to 127.0.0.1"
        )
