"""Proving a template works before anyone sends it: parse, declare, render every locale.

Runs at load and reload for every new or changed template, so a template that no longer
renders is reported then, not at the first send.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from jinja2 import meta, nodes

from switchboard.errors import TemplateError

from .channels import MANIFEST, PARTS, part_files
from .fields import field_problems
from .info import TemplateInfo
from .locales import fallback_chain, file_locale, language, resolve, split_locale
from .problems import Problem
from .rendering import plan, render_part
from .sandbox import Environments


def check_template(envs: Environments, info: TemplateInfo) -> list[Problem]:
    """Problems of one structurally loaded template (its own structural ones not repeated)."""
    problems, trees = _syntax_problems(envs, info)
    if any(problem.fatal for problem in info.problems):  # no usable declaration to check against
        return problems
    problems += _undeclared_problems(envs, info, trees)
    problems += _translation_problems(envs, info)
    sample_problems = _sample_problems(info)
    problems += sample_problems
    if not sample_problems:
        problems += _render_problems(envs, info, trees)
    return problems


def check_shared(envs: Environments, paths: list[str]) -> list[Problem]:
    """Syntax errors in layouts and partials, even those no template uses yet."""
    problems: list[Problem] = []
    for path in paths:
        try:
            envs.parse(path)
        except TemplateError as exc:
            problems.append(Problem(path, str(exc)))
    return problems


def _part_paths(envs: Environments, info: TemplateInfo) -> Iterator[str]:
    """The part files of a template, every locale, that could be read."""
    allowed = set(part_files(info.channel))
    for path in info.files:
        if split_locale(path.rpartition("/")[2])[0] in allowed and path in envs.sources:
            yield path


def _syntax_problems(envs: Environments, info: TemplateInfo) -> tuple[list[Problem], dict[str, nodes.Template]]:
    """Syntax errors, and the syntax trees of the part files that parse."""
    problems: list[Problem] = []
    trees: dict[str, nodes.Template] = {}
    for path in _part_paths(envs, info):
        try:
            trees[path] = envs.parse(path)
        except TemplateError as exc:
            problems.append(Problem(info.key, str(exc), file=path.rpartition("/")[2]))
    return problems, trees


def _undeclared_problems(envs: Environments, info: TemplateInfo, trees: Mapping[str, nodes.Template]) -> list[Problem]:
    """Variables used but not declared: caught here even in branches the sample skips."""
    allowed = set(info.fields) | envs.global_names()
    problems: list[Problem] = []
    for path, tree in trees.items():
        for name in sorted(meta.find_undeclared_variables(tree) - allowed - _assigned_names(tree)):
            message = f"uses {name!r}, which template.toml does not declare"
            problems.append(Problem(info.key, message, file=path.rpartition("/")[2]))
    return problems


def _assigned_names(tree: nodes.Template) -> set[str]:
    """Names the template defines itself; Jinja's meta misses top-level imports used in blocks."""
    names = {node.name for node in tree.find_all(nodes.Name) if node.ctx in {"store", "param"}}
    names |= {node.target for node in tree.find_all(nodes.Import)}
    names |= {node.name for node in tree.find_all(nodes.Macro)}
    for node in tree.find_all(nodes.FromImport):
        names |= {entry if isinstance(entry, str) else entry[1] for entry in node.names}
    return names


def _translation_problems(envs: Environments, info: TemplateInfo) -> list[Problem]:
    """A locale must not silently fall back to another language for one of its parts."""
    problems: list[Problem] = []
    for tag in info.locales[1:]:
        for part in PARTS[info.channel]:
            path = resolve(f"{info.key}/{part.file}", fallback_chain(tag), envs.sources)
            if path is None:
                continue
            served = file_locale(path) or info.default_locale
            if language(served) != language(tag):
                message = f"no {language(tag)} translation, {tag} would get the {served} text"
                problems.append(Problem(info.key, message, locale=tag, file=part.file))
    return problems


def _sample_problems(info: TemplateInfo) -> list[Problem]:
    """The sample must fit the declaration: it is the contract's worked example."""
    problems = [
        Problem(info.key, f"[sample] {reason}", file=MANIFEST) for reason in field_problems(info.fields, info.sample)
    ]
    for name in sorted(set(info.sample) - set(info.fields)):
        problems.append(Problem(info.key, f"[sample] {name!r} is not a declared field", file=MANIFEST))
    return problems


def _render_problems(envs: Environments, info: TemplateInfo, parsed: Mapping[str, object]) -> list[Problem]:
    """Render every locale with the sample, and again with optional fields left out."""
    full = {name: info.sample.get(name) for name in info.fields}
    samples: list[tuple[str, Mapping[str, object]]] = [("", full)]
    optional = [name for name, spec in info.fields.items() if not spec.required and full[name] is not None]
    if optional:
        samples.append((" (with optional fields left out)", {**full, **dict.fromkeys(optional)}))
    problems: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    for tag in info.locales:
        chosen = plan(envs, info, tag)
        for part, path in chosen.files:
            if path not in parsed:  # its syntax error is already reported
                continue
            for suffix, data in samples:
                try:
                    render_part(envs, info, chosen, part, path, data)
                except TemplateError as exc:
                    file = path.rpartition("/")[2]
                    if (tag, file, str(exc)) not in seen:
                        seen.add((tag, file, str(exc)))
                        problems.append(Problem(info.key, f"{exc}{suffix}", locale=tag, file=file))
    return problems
