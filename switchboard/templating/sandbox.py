"""The Jinja2 side: immutable sandbox, StrictUndefined, HTML autoescape, one-line errors.

Sources come from memory (what the store read and validated), never from disk at render
time, so a file edited after the last refresh cannot reach a send unchecked. Each locale
chain gets its own environment whose loader applies the locale fallback to every name,
so ``{% extends "layouts/email.html" %}`` in a French body finds ``layouts/email.fr.html``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from threading import Lock
from types import MappingProxyType
from typing import Any

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound, nodes, select_autoescape
from jinja2 import TemplateError as JinjaError
from jinja2.exceptions import SecurityError, TemplatesNotFound, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from switchboard.errors import TemplateError

from .fields import RESERVED
from .locales import file_locale, resolve


class _SourceLoader(BaseLoader):
    """Serves loaded sources, resolving every name through one locale chain."""

    def __init__(self, root: Path, sources: Mapping[str, str], chain: tuple[str, ...]) -> None:
        self._root = root
        self._sources = sources
        self._chain = chain

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        path = resolve(template, self._chain, self._sources)
        if path is None:
            raise TemplateNotFound(template)
        return self._sources[path], str(self._root / path), lambda: True


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, also refusing private names that happen not to exist.

    Probes like ``range.__self__`` then fail with the same clear "unsafe" error as
    ``''.__class__`` instead of a misleading "has no attribute".
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("_"):
            return self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)


def _environment(loader: BaseLoader) -> ImmutableSandboxedEnvironment:
    return _Sandbox(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "htm"), default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


class Environments:
    """The sandboxed environments of one loaded state, one per locale chain, built lazily."""

    def __init__(self, root: Path, sources: Mapping[str, str]) -> None:
        self.root = root
        self.sources: Mapping[str, str] = MappingProxyType(dict(sources))
        self._known = frozenset(tag for tag in map(file_locale, self.sources) if tag is not None)
        self._by_chain: dict[tuple[str, ...], ImmutableSandboxedEnvironment] = {}
        self._lock = Lock()

    def for_chain(self, chain: tuple[str, ...]) -> ImmutableSandboxedEnvironment:
        """The environment for a chain; unknown locales are dropped so the cache stays small."""
        key = tuple(tag for tag in chain if tag in self._known)
        with self._lock:
            if key not in self._by_chain:
                self._by_chain[key] = _environment(_SourceLoader(self.root, self.sources, key))
            return self._by_chain[key]

    def global_names(self) -> frozenset[str]:
        """Names a template may use without declaring them (Jinja globals and ``locale``)."""
        return frozenset(self.for_chain(()).globals) | RESERVED

    def parse(self, path: str) -> nodes.Template:
        """The syntax tree of one stored file; TemplateError with line on a syntax error."""
        try:
            return self.for_chain(()).parse(self.sources[path], path, str(self.root / path))
        except TemplateSyntaxError as exc:
            raise TemplateError(describe(exc, self.root, path)) from exc

    def render(self, chain: tuple[str, ...], name: str, path: str, context: Mapping[str, object]) -> str:
        """Render ``name`` (resolved to ``path``) for ``chain``; every failure is a TemplateError."""
        try:
            return self.for_chain(chain).get_template(name).render(context)
        except Exception as exc:
            raise TemplateError(describe(exc, self.root, path)) from exc


def describe(exc: BaseException, root: Path, path: str) -> str:
    """One line saying what went wrong and where, relative to the file being rendered."""
    where: tuple[str | None, int | None]
    if isinstance(exc, TemplateSyntaxError):
        reason = f"syntax error: {exc.message}"
        where = _relative(exc.filename, root), exc.lineno
    else:
        reason = _reason(exc)
        where = _innermost_template_line(exc, root)
    file, line = where
    if file is None or (file == path and line is None):
        return reason
    if file == path:
        return f"{reason} (line {line})"
    return f"{reason} (in {file}" + (f" line {line})" if line else ")")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SecurityError):
        return f"sandbox: {exc.message}"
    if isinstance(exc, TemplatesNotFound):
        return f"none of {', '.join(map(str, exc.templates))} exists"
    if isinstance(exc, TemplateNotFound):
        return f"template {exc.name!r} not found"
    if isinstance(exc, JinjaError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _innermost_template_line(exc: BaseException, root: Path) -> tuple[str | None, int | None]:
    """Jinja rewrites tracebacks to point at template lines; keep the deepest one of ours."""
    found: tuple[str | None, int | None] = (None, None)
    tb = exc.__traceback__
    while tb is not None:
        file = _relative(tb.tb_frame.f_code.co_filename, root)
        if file is not None:
            found = (file, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _relative(filename: str | None, root: Path) -> str | None:
    if filename is None:
        return None
    try:
        return Path(filename).relative_to(root).as_posix()
    except ValueError:
        return None
