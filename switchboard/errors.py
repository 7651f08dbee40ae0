"""The switchboard's exceptions: one small tree; none of them ever carries a credential."""

from __future__ import annotations

from bus.errors import ConfigurationError


class SwitchboardError(Exception):
    """Base of every error the switchboard raises on purpose."""


class SettingsError(SwitchboardError, ConfigurationError):
    """The settings file or environment cannot work as given (a bus ConfigurationError too)."""


class TemplateError(SwitchboardError):
    """A template is missing, does not render, or its data does not fit its declaration."""


class ProviderError(SwitchboardError):
    """A provider call failed; subclasses say whether trying again can help.

    Carries the HTTP status and the provider's own error code when there is one, and a
    message safe to log and store (never the request's credentials).
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class TransientProviderError(ProviderError):
    """Worth retrying: rate limits (429), 5xx, network errors before the request was sent.

    ``retry_after`` is the provider's own wait in seconds when it said one.
    """

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class AmbiguousProviderError(TransientProviderError):
    """The request reached the provider but no answer came back (it timed out while waiting, or
    the connection was cut after the request went out): the message may well have been
    accepted, so another try, or failing over to another provider, can send it twice. A plain
    TransientProviderError (refused connection, 5xx, 429) never does."""


class PermanentProviderError(ProviderError):
    """Retrying cannot help (invalid recipient, payload rejected).

    ``recipient_problem`` is True when the failure is about recipients (invalid number, STOP,
    unregistered device token); ``recipients`` are the ones the provider named, the only ones
    to suppress (empty when it did not say which: then nobody is suppressed).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        recipient_problem: bool = False,
        recipients: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.recipient_problem = recipient_problem
        self.recipients = recipients


class ProviderConfigurationError(ProviderError):
    """The provider rejected our credentials or setup: the channel stops until fixed.

    ``sender`` set: only that sender is refused (e.g. an unverified from address), not the channel.
    """

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, sender: str | None = None
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.sender = sender
