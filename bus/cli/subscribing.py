"""Publishing and subscriptions: publish, subscribe, unsubscribe, apps, who-gets."""

from __future__ import annotations

from typing import Any

import click

from bus.cli.base import Env, app_bus_of, cli, common, parse_attributes
from bus.cli.output import table
from bus.errors import ConfigurationError


# --- publishing -------------------------------------------------------------------
@cli.command()
@click.argument("event_type")
@click.argument("attributes", required=False)
@common
def publish(env: Env, event_type: str, attributes: str | None) -> None:
    """Publish EVENT_TYPE with ATTRIBUTES (a JSON object); prints the bus_id."""
    attrs = parse_attributes(attributes)
    bus_id = env.bus().publish(event_type, attrs)
    env.emit({"bus_id": bus_id, "event_type": event_type}, bus_id)


# --- subscriptions ----------------------------------------------------------------
@cli.command()
@click.argument("app_module")
@common
def subscribe(env: Env, app_module: str) -> None:
    """Store the subscriptions declared by APP_MODULE (module[:bus]) in Redis."""
    app_bus = app_bus_of(env, app_module)
    if not app_bus.dispatches:
        raise ConfigurationError(f"{app_module} declares no dispatches")
    counts = app_bus.subscribe_all()
    rows = [_subscription_row(sub) for key in counts for sub in app_bus.dispatches[key].subscriptions]
    env.emit(
        {"apps": counts, "subscriptions": rows},
        "\n".join(f"subscribed {app}: {n} subscription(s)" for app, n in counts.items()),
    )


@cli.command()
@click.argument("app_module", required=False)
@click.option("--app", "app_keys", multiple=True, help="App key to unsubscribe (repeatable).")
@common
def unsubscribe(env: Env, app_module: str | None, app_keys: tuple[str, ...]) -> None:
    """Remove the subscriptions of APP_MODULE's apps, or of --app KEY."""
    if not app_module and not app_keys:
        raise click.UsageError("give APP_MODULE or --app KEY")
    b = env.bus()
    keys = list(app_keys)
    if app_module:
        keys += list(app_bus_of(env, app_module).dispatches)
    removed = {key: b.unsubscribe(key) for key in keys}
    env.emit(removed, "\n".join(f"{k}: {'unsubscribed' if v else 'was not subscribed'}" for k, v in removed.items()))


@cli.command()
@common
def apps(env: Env) -> None:
    """Every app and its subscriptions, as stored in Redis."""
    subs = env.bus().registry.load()
    rows = [_subscription_row(sub) for sub in subs]
    env.emit(rows, table(rows, SUBSCRIPTION_COLUMNS, empty="no apps are subscribed"))


@cli.command("who-gets")
@click.argument("event_type")
@click.argument("attributes", required=False)
@common
def who_gets(env: Env, event_type: str, attributes: str | None) -> None:
    """Which subscriptions would receive this event (a dry run of the matchers)."""
    subs = env.bus().who_gets(event_type, parse_attributes(attributes))
    rows = [_subscription_row(sub) for sub in subs]
    env.emit(rows, table(rows, SUBSCRIPTION_COLUMNS, empty="no subscription matches"))


SUBSCRIPTION_COLUMNS = [
    ("app", "APP"),
    ("key", "SUBSCRIPTION"),
    ("queue", "QUEUE"),
    ("class", "CLASS"),
    ("matcher", "MATCHER"),
]


def _subscription_row(sub: Any) -> dict[str, Any]:
    return {
        "app": sub.app_key,
        "key": sub.key,
        "queue": sub.queue_name,
        "class": sub.class_name,
        "matcher": sub.matcher.to_redis(),
    }
