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
    """Worth retrying: rate limits (429), 5xx, timeouts, network errors.

    ``retry_after`` is the provider's own wait in seconds when it said one.
    """

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class AmbiguousProviderError(TransientProviderError):
    """The request reached the provider and no answer came (a read timeout, a connection cut
    after the message went out): the provider may have accepted it.

    Retrying may send the message twice, and so may failing over to another provider; a
    plain TransientProviderError (refused connection, 5xx, 429) never does.
    """


class PermanentProviderError(ProviderError):
    """Retrying cannot help (invalid recipient, payload rejected).

    ``recipient_problem`` is True when the failure is about the recipient itself (invalid
    number, STOP, unregistered device token): the recipient is then suppressed.
    ``recipients`` names which ones when the provider said (an SMTP server refusing some
    RCPT TO addresses); empty means every recipient of the message.
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
    """The provider rejected our credentials or setup: the channel stops until fixed."""
