"""The three channels the switchboard sends on; also the folder names under ``templates/``."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """A way to reach someone, with one provider each."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
