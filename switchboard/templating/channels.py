"""The three channels and the part files each one is made of."""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.channels import Channel
from switchboard.errors import TemplateError

__all__ = ["MANIFEST", "ONE_OF", "PARTS", "Channel", "Part", "parse_channel", "part_files"]


@dataclass(frozen=True)
class Part:
    """One file of a template and the RenderedMessage field it fills."""

    file: str
    field: str
    required: bool
    one_line: bool = False  # subjects and titles: newlines from data must not reach a header


PARTS: dict[Channel, tuple[Part, ...]] = {
    Channel.EMAIL: (
        Part("subject.txt", "subject", required=True, one_line=True),
        Part("body.txt", "text", required=False),
        Part("body.html", "html", required=False),
    ),
    Channel.SMS: (Part("body.txt", "body", required=True),),
    Channel.PUSH: (
        Part("title.txt", "title", required=True, one_line=True),
        Part("body.txt", "body", required=True),
    ),
}

# Of each group, at least one file must exist (an email needs a text or an HTML body).
ONE_OF: dict[Channel, tuple[str, ...]] = {Channel.EMAIL: ("body.txt", "body.html")}

MANIFEST = "template.toml"


def parse_channel(value: str) -> Channel:
    """A Channel from its folder name; the TemplateError names the valid ones."""
    if isinstance(value, Channel):  # asked on every render: skip Enum's lookup
        return value
    try:
        return Channel(value)
    except ValueError:
        valid = ", ".join(channel.value for channel in Channel)
        raise TemplateError(f"unknown channel {value!r} (expected one of {valid})") from None


def part_files(channel: Channel) -> tuple[str, ...]:
    """The part file names a template of this channel may have."""
    return tuple(part.file for part in PARTS[channel])
