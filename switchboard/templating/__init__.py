"""Notification templates: files in git, rendered in Jinja2's immutable sandbox.

``templates/<channel>/<name>/`` holds the parts (``subject.txt``, ``body.txt``,
``body.html``, ``title.txt``), locale variants (``body.fr.html``) and ``template.toml``;
``templates/layouts/`` and ``templates/partials/`` are shared. ``TemplateStore`` loads,
checks, hot-reloads and renders them.
"""

from switchboard.errors import TemplateError

from .channels import PARTS, Channel, Part
from .fields import FieldSpec, FieldType, validate_data
from .info import TemplateInfo
from .message import RenderedMessage
from .problems import Problem
from .store import TemplateStore

__all__ = [
    "PARTS",
    "Channel",
    "FieldSpec",
    "FieldType",
    "Part",
    "Problem",
    "RenderedMessage",
    "TemplateError",
    "TemplateInfo",
    "TemplateStore",
    "validate_data",
]
