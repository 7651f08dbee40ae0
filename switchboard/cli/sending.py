"""Publishing test notifications: send email, sms, push."""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from bus.cli import Env, common, parse_attributes, parse_since
from switchboard.cli.base import cli, store
from switchboard.client import send_email, send_push, send_sms
from switchboard.errors import TemplateError

_DELAY = re.compile(r"^\d+(\.\d+)?[smhd]?$")


# --- sending test events ----------------------------------------------------------
@cli.group()
def send() -> None:
    """Publish a test notification event (as any app would)."""


@dataclass(frozen=True, slots=True)
class Content:
    """The options every send command shares: the template and its data, the key, the time."""

    template: str | None
    data_json: str | None
    locale: str | None
    sample: bool
    no_check: bool
    idempotency_key: str | None
    user_id: str | None
    category: str | None
    send_at: str | None

    def fields(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "data": parse_attributes(self.data_json) if self.data_json else None,
            "locale": self.locale,
            "idempotency_key": self.idempotency_key,
            "user_id": self.user_id,
            "category": self.category,
            "send_at": self.send_at,
        }


def _content_options(fn: Any) -> Any:
    """The shared options, handed to the command as one ``content: Content``."""

    @click.option(
        "--send-at", help="When to send: an ISO time with its zone (2026-12-24T09:00:00+01:00) or a delay (10m, 2h)."
    )
    @click.option("--category", help="What an inline message is for (a template names its own).")
    @click.option("--user-id", help="The person's id in your apps (their preferences follow it).")
    @click.option("--idempotency-key", help="The request's key: the same key is never sent twice.")
    @click.option("--no-check", is_flag=True, help="Publish even if the template does not render here with this data.")
    @click.option("--sample", is_flag=True, help="Use the template's sample data.")
    @click.option("--locale", help="Locale, e.g. fr or fr_CA.")
    @click.option("--data", "data_json", help="Template data, a JSON object.")
    @click.option("--template", help="Template name.")
    @functools.wraps(fn)
    def collected(*args: Any, **kw: Any) -> Any:
        content = Content(**{f.name: kw.pop(f.name) for f in dataclasses.fields(Content)})
        return fn(*args, content=content, **kw)

    return collected


def _send_at(text: str | None) -> str | None:
    """``--send-at``: a delay (``10m``) as the UTC time it ends, else the ISO time as given."""
    if text is None or not _DELAY.match(text):
        return text
    return datetime.fromtimestamp(time.time() + parse_since(text), UTC).isoformat()


def _publish(env: Env, sender: Any, channel: str, message: dict[str, Any], content: Content) -> None:
    sample, check = content.sample, not content.no_check
    fields = {k: v for k, v in {**message, **content.fields()}.items() if v not in (None, (), [])}
    if "send_at" in fields:
        fields["send_at"] = _send_at(fields["send_at"])
    if sample and not fields.get("template"):
        raise click.UsageError("--sample needs --template")
    if fields.get("template") and (sample or check):
        templates = store(env)
        if sample:
            fields["data"] = {**templates.get(channel, fields["template"]).sample, **fields.get("data", {})}
        if check:  # what the switchboard would reject, said here rather than in its failed list
            try:
                templates.render(channel, fields["template"], fields.get("data", {}), fields.get("locale"))
            except TemplateError as exc:
                raise click.UsageError(f"{exc} (--no-check publishes it anyway)") from None
    bus_id = sender(bus=env.bus(), **fields)
    env.emit({"bus_id": bus_id}, bus_id)


@send.command("email")
@click.option("--to", "to", multiple=True, required=True, help="Recipient (repeatable).")
@click.option("--subject")
@click.option("--text")
@click.option("--html")
@click.option("--from", "from_", help="Sender (must be allowed in settings).")
@click.option("--cc", multiple=True, help="Copy to (repeatable).")
@click.option("--bcc", multiple=True, help="Blind copy to (repeatable).")
@click.option("--reply-to", help="Where replies go.")
@_content_options
@common
def send_email_cmd(
    env: Env,
    to: tuple[str, ...],
    subject: str | None,
    text: str | None,
    html: str | None,
    from_: str | None,
    cc: tuple[str, ...],
    bcc: tuple[str, ...],
    reply_to: str | None,
    content: Content,
) -> None:
    """Publish send_email."""
    fields = {
        "to": list(to),
        "cc": list(cc),
        "bcc": list(bcc),
        "reply_to": reply_to,
        "subject": subject,
        "text": text,
        "html": html,
        "from_": from_,
    }
    _publish(env, send_email, "email", fields, content)


@send.command("sms")
@click.option("--to", required=True, help="E.164 number, e.g. +14155550123.")
@click.option("--body")
@_content_options
@common
def send_sms_cmd(env: Env, to: str, body: str | None, content: Content) -> None:
    """Publish send_sms."""
    _publish(env, send_sms, "sms", {"to": to, "body": body}, content)


@send.command("push")
@click.option("--to", "to", multiple=True, help="Device token (repeatable).")
@click.option("--topic")
@click.option("--title")
@click.option("--body")
@click.option("--data-payload", help="String map sent to the app, a JSON object.")
@_content_options
@common
def send_push_cmd(
    env: Env,
    to: tuple[str, ...],
    topic: str | None,
    title: str | None,
    body: str | None,
    data_payload: str | None,
    content: Content,
) -> None:
    """Publish send_push."""
    fields = {
        "to": list(to),
        "topic": topic,
        "title": title,
        "body": body,
        "data_payload": parse_attributes(data_payload) if data_payload else None,
    }
    _publish(env, send_push, "push", fields, content)
