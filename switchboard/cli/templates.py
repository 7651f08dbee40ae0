"""Managing templates: list, show, render, check."""

from __future__ import annotations

import sys
import tempfile
import webbrowser
from pathlib import Path
from typing import Any

import click

from bus.cli import Env, common, parse_attributes
from bus.cli.output import table, to_json
from switchboard.cli.base import CHANNELS, cli, store
from switchboard.templating import TemplateStore


# --- templates --------------------------------------------------------------------
@cli.group()
def templates() -> None:
    """The message templates: list, show, render, check."""


@templates.command("list")
@common
def templates_list(env: Env) -> None:
    """Every template, its locales and whether it renders."""
    rows = [
        {"key": t.key, "locales": ",".join(t.locales), "ok": t.ok, "description": t.description}
        for t in store(env).templates()
    ]
    env.emit(
        rows,
        table(
            rows,
            [("key", "TEMPLATE"), ("locales", "LOCALES"), ("ok", "OK"), ("description", "DESCRIPTION")],
            empty="no templates",
        ),
    )


def _find_one(s: TemplateStore, name: str, channel: str | None) -> Any:
    found = s.find(name, channel)
    if not found:
        raise click.UsageError(f"no template {name!r}" + (f" for {channel}" if channel else ""))
    if len(found) > 1:
        choices = ", ".join(t.key for t in found)
        raise click.UsageError(f"{name!r} exists for several channels ({choices}); add --channel")
    return found[0]


@templates.command("show")
@click.argument("name")
@click.option("--channel", type=CHANNELS)
@common
def templates_show(env: Env, name: str, channel: str | None) -> None:
    """A template's description, fields, sample data, files and problems."""
    info = _find_one(store(env), name, channel)
    data = info.to_dict()
    if env.json:
        click.echo(to_json(data))
        return
    click.echo(f"{info.key}: {info.description}")
    click.echo(f"locales: {', '.join(info.locales)}")
    click.echo("fields:")
    for field, spec in info.fields.items():
        click.echo(f"  {field}: {spec}")
    click.echo("sample data:")
    click.echo(to_json(dict(info.sample)))
    for problem in info.problems:
        click.echo(f"problem: {problem}")


@templates.command("render")
@click.argument("name")
@click.option("--channel", type=CHANNELS)
@click.option("--data", "data_json", help="Data, a JSON object (default: the template's sample).")
@click.option("--locale")
@click.option("--open", "open_html", is_flag=True, help="Open the HTML part in a browser.")
@common
def templates_render(
    env: Env, name: str, channel: str | None, data_json: str | None, locale: str | None, open_html: bool
) -> None:
    """Render a template with data (or its sample) and print every part."""
    s = store(env)
    info = _find_one(s, name, channel)
    data = parse_attributes(data_json) if data_json else info.sample
    message = s.render(info.channel, info.name, data, locale)
    if env.json:
        click.echo(to_json(message.to_dict()))
    else:
        click.echo(f"{info.key} [{message.locale}]")
        for part, text in message.parts().items():
            click.echo(f"--- {part} ---")
            click.echo(text)
    if open_html and message.html:
        path = Path(tempfile.mkstemp(suffix=".html", prefix=f"{info.name}-")[1])
        path.write_text(message.html)
        webbrowser.open(path.as_uri())


@templates.command("check")
@common
def templates_check(env: Env) -> None:
    """Render every template in every locale with its sample data; exit 1 on any problem."""
    problems = store(env).check()
    if env.json:
        click.echo(to_json([p.to_dict() for p in problems]))
    else:
        for problem in problems:
            click.echo(str(problem))
        if not problems:
            click.echo("all templates render")
    if problems:
        sys.exit(1)
