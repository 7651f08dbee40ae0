"""The :class:`Board`: what the switchboard's pages read and change, built once with the app.

Handlers reach it through the request (:func:`board_of`), as bus pages reach the
:class:`bus.web.Dashboard`. It holds no provider: the dashboard never sends anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.requests import Request

from bus import Bus
from switchboard.channel_states import ChannelStates
from switchboard.channels import Channel
from switchboard.circuits import Circuits
from switchboard.deliveries import Deliveries, Suppressions
from switchboard.keys import SwitchboardKeys
from switchboard.live_channels import LiveChannels
from switchboard.preference_changes import PreferenceChanges
from switchboard.preferences import Preferences
from switchboard.providers.outbox import Outbox
from switchboard.recipient_limits import RecipientLimits
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateStore
from switchboard.web.previews import Previews

# Only used when claiming a record to send it, which the dashboard never does.
STALE_AFTER = 60.0


@dataclass(frozen=True)
class Board:
    """The switchboard's settings, templates, records, outbox, previews, circuits and limits, shared by its pages."""

    settings: SwitchboardSettings
    templates: TemplateStore
    deliveries: Deliveries
    suppressions: Suppressions
    outbox: Outbox
    previews: Previews
    channel_states: ChannelStates
    preference_changes: PreferenceChanges
    circuits: Circuits
    recipient_limits: RecipientLimits
    live_channels: LiveChannels

    @classmethod
    def build(cls, bus: Bus, settings: SwitchboardSettings) -> Board:
        """Stores on ``bus``'s Redis; templates re-read as often as the worker re-reads them."""
        keys = SwitchboardKeys(bus.keys)
        return cls(
            settings=settings,
            templates=TemplateStore(
                settings.templates_dir,
                default_locale=settings.default_locale,
                refresh_interval=settings.template_refresh_seconds,
                categories=settings.categories,
            ),
            deliveries=Deliveries(bus.redis, keys, retention=settings.retention_seconds, stale_after=STALE_AFTER),
            suppressions=Suppressions(bus.redis, keys),
            outbox=Outbox(bus.redis, keys, size=settings.outbox_size),
            previews=Previews(),
            channel_states=ChannelStates(bus.redis, keys, time.time),
            preference_changes=PreferenceChanges(bus, Preferences(bus.redis, keys, time.time), settings),
            circuits=Circuits(bus.redis, keys, settings.circuit),
            recipient_limits=RecipientLimits(bus.redis, keys),
            live_channels=LiveChannels(bus.redis, keys),
        )

    def providers_in_use(self) -> dict[Channel, str]:
        """Each channel's provider as the running workers recorded it (``outbox``: dev mode); this
        dashboard's own settings for a channel none recorded (no worker running)."""
        recorded = self.live_channels.recorded()
        return {channel: recorded.get(channel, provider) for channel, provider in self.settings.live_channels().items()}

    def outbox_count(self) -> int:
        """Messages in the outbox, without reading them."""
        return self.outbox.count()

    def suppressed_count(self, channel: str) -> int:
        """Recipients suppressed on ``channel``, without reading them."""
        return self.suppressions.count(channel)


def board_of(request: Request) -> Board:
    """The switchboard state of the app serving this request."""
    board: Board = request.app.state.switchboard
    return board
