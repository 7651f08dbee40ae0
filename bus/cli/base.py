"""What every ``bus`` command shares: options, settings, errors as one line, the group."""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import redis.exceptions

from bus.backend.connection import redact_url, redis_problem, url_password
from bus.cli.loader import load_bus
from bus.cli.output import to_json
from bus.core import Bus
from bus.errors import BusError, ConfigurationError, RedisRefused, RedisUnavailable
from bus.safejson import read_json
from bus.settings import BusSettings, load_settings
from bus.telemetry.logs import FORMATS, configure_logging, quiet_wire_loggers, redact_logs, use_format

F = TypeVar("F", bound=Callable[..., Any])
WIRE_VERBOSITY = 3
"""-vvv: the SDKs' own request logging too (still redacted)."""


@dataclass
class Env:
    """What every command gets: resolved settings and whether to print JSON."""

    settings: BusSettings
    json: bool
    settings_file: str | None = None
    flags: tuple[str, ...] = ()
    """The connection flags given on the command line (``--redis-url``, ``--namespace``, ``--settings``)."""

    def bus(self) -> Bus:
        return Bus(settings=self.settings)

    def emit(self, data: Any, text: str) -> None:
        click.echo(to_json(data) if self.json else text)


def common(fn: F) -> F:
    """The options every command shares, defined once."""

    @click.option("--redis-url", envvar=None, help="Redis URL (default: $BUS_REDIS_URL, settings, embedded).")
    @click.option("--namespace", help="Key namespace (default: resque).")
    @click.option("--settings", "settings_file", type=click.Path(dir_okay=False), help="Settings TOML file.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @functools.wraps(fn)
    def wrapper(
        *args: Any, redis_url: str | None, namespace: str | None, settings_file: str | None, as_json: bool, **kw: Any
    ) -> Any:
        settings = load_settings(settings_file, redis_url=redis_url, namespace=namespace)
        redact_logs([url_password(settings.redis_url)])
        chosen = click.get_current_context().find_root().obj or {}
        if chosen.get("log_format") is None and settings.log_format != "text":
            use_format(settings.log_format)
        try:
            given = (("--redis-url", redis_url), ("--namespace", namespace), ("--settings", settings_file))
            flags = tuple(flag for flag, value in given if value)
            return fn(Env(settings, as_json, settings_file, flags), *args, **kw)
        except (redis.exceptions.RedisError, RedisUnavailable, RedisRefused) as exc:
            # One line naming the cause (unreachable, authentication, no such database), never a traceback.
            raise redis_problem(exc, settings.redis_url or "the embedded server") from None

    return wrapper  # type: ignore[return-value]


def parse_attributes(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = read_json(text)
    except ValueError as exc:
        raise click.UsageError(f"attributes are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise click.UsageError("attributes must be a JSON object")
    return value


def command_group(fn: Callable[[], None]) -> click.Group:
    """A top-level group with ``-h`` and ``-v``/``-vv`` logging, as both CLIs have."""

    @click.group(name=fn.__name__, help=fn.__doc__, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("-v", "--verbose", count=True, help="More logging (-vv debug, -vvv the SDKs' HTTP traffic too).")
    @click.option(
        "--log-format",
        type=click.Choice(FORMATS),
        help="Log lines as text or one JSON object each (default: [bus] log_format, else text).",
    )
    @click.pass_context
    def group(ctx: click.Context, verbose: int, log_format: str | None) -> None:
        level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
        configure_logging(level, log_format or "text")
        redact_logs(())  # credential-shaped text, always; each command adds its own secrets
        if verbose < WIRE_VERBOSITY:
            quiet_wire_loggers()
        ctx.obj = {"log_format": log_format}

    return group


@command_group
def cli() -> None:
    """The event bus: publish, subscribe, drive and ride, on Resque's Redis layout."""


def worker_options(fn: F) -> F:
    fn = click.option("--concurrency", "-c", type=click.IntRange(min=1), help="Jobs run at once (threads).")(fn)
    fn = click.option("--batch", type=click.IntRange(min=1), help="Jobs reserved per round trip.")(fn)
    return click.option("--burst", is_flag=True, help="Exit once the queues (and due retries) are empty.")(fn)


def announce(worker_id: str) -> None:
    click.echo(f"worker {worker_id} running; SIGTERM or Ctrl-C stops it gracefully", err=True)


def app_bus_of(env: Env, spec: str) -> Bus:
    """The app module's Bus, configured from the command's settings unless it configured itself.

    A module that fixes its own URL or settings cannot be pointed elsewhere by flags: rather than
    ignore them, the command refuses.
    """
    app_bus = load_bus(spec)
    if not app_bus.configured:
        app_bus.configure(env.settings)
        return app_bus
    theirs, ours = app_bus.settings, env.settings
    if env.flags and (theirs.redis_url, theirs.namespace) != (ours.redis_url, ours.namespace):
        raise ConfigurationError(
            f"{spec} builds its own Bus for {redact_url(theirs.redis_url or 'the embedded server')}, so "
            f"{', '.join(env.flags)} cannot change it: drop the flag(s), or build the Bus with Bus() "
            "(settings and environment) in the module"
        )
    return app_bus


def parse_since(text: str) -> float:
    """``90s``, ``10m``, ``2h``, ``1d`` (or plain seconds) -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise click.UsageError(f"--since {text!r}: expected e.g. 90s, 10m, 2h or 1d") from None
    if not 0 < seconds < math.inf:
        raise click.UsageError(f"--since {text!r}: give a positive duration, e.g. 90s, 10m, 2h or 1d")
    return seconds


def run_cli(
    group: click.Command,
    prog: str,
    argv: list[str] | None,
    *,
    bad_input: tuple[type[Exception], ...] = (),
    failures: tuple[type[Exception], ...] = (),
) -> None:
    """Run a click group (or command): errors are one line on stderr and a non-zero exit, never a traceback.

    Usage and configuration mistakes exit 2; other expected failures exit 1.
    """
    usage: tuple[type[Exception], ...] = (ConfigurationError, *bad_input)
    failed: tuple[type[Exception], ...] = (BusError, *failures)
    try:
        group.main(args=argv, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        click.echo(f"{prog}: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"{prog}: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except usage as exc:
        click.echo(f"{prog}: error: {exc}", err=True)
        sys.exit(2)
    except failed as exc:
        click.echo(f"{prog}: error: {exc}", err=True)
        sys.exit(1)
