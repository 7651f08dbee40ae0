"""``switchboard hooks``: the webhook receiver the providers call (delivery status, inbound SMS)."""

from __future__ import annotations

import dataclasses
import logging

import click

from bus import Bus
from bus.cli import Env, common
from bus.errors import ConfigurationError
from switchboard.cli.base import board_settings, cli
from switchboard.errors import SettingsError
from switchboard.hooks.config import hook_problems, served

log = logging.getLogger("switchboard.hooks")


@cli.command()
@click.option("--host", help="Address to listen on (default: [switchboard.hooks] host, else 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: [switchboard.hooks] port, else 8485).")
@common
def hooks(env: Env, host: str | None, port: int | None) -> None:
    """Receive the providers' webhooks (SendGrid events, Twilio callbacks) and publish them for the
    worker; serve the emails' one-click unsubscribe links when [switchboard.unsubscribe] secret is set.

    Meant to face the internet: it refuses to start unless every enabled hook can verify its
    requests ([switchboard.sendgrid] webhook_public_key, the Twilio auth token), [switchboard]
    public_url is set, and there is something to serve ([switchboard.hooks] enabled = [] with an
    unsubscribe secret serves the links alone)."""
    try:
        import uvicorn

        from switchboard.hooks.app import create_hooks_app
    except ImportError as exc:  # the web extra is optional
        needed = exc.name or exc
        raise ConfigurationError(f"switchboard hooks needs {needed}: pip install 'switchboard-bus[web]'") from exc
    settings = board_settings(env)
    found = hook_problems(settings)
    if found:
        raise SettingsError(f"switchboard hooks cannot start: {'; '.join(found)}")
    bus = Bus(settings=dataclasses.replace(env.settings, publish_timeout=settings.hooks.publish_timeout))
    app = create_hooks_app(bus, settings)
    bind_host, bind_port = host or settings.hooks.host, settings.hooks.port if port is None else port
    log.warning("serving on http://%s:%d: %s", bind_host, bind_port, ", ".join(served(settings)))
    server = uvicorn.Server(
        uvicorn.Config(app, host=bind_host, port=bind_port, log_level="info", server_header=False, proxy_headers=False)
    )
    server.run()
    if not server.started:  # startup failed (the port is taken...); uvicorn said why
        raise SystemExit(3)
