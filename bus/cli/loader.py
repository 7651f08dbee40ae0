"""Finding an app's Bus from a module name, for ``bus subscribe`` and ``bus work``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from bus.core import Bus, iter_buses
from bus.errors import ConfigurationError


def import_app(spec: str) -> ModuleType:
    """Import ``package.module`` or ``path/to/file.py`` (the current directory is importable).

    An app that raises while importing is reported in one line: the error and where it was raised.
    """
    try:
        return _import(spec)
    except ConfigurationError:
        raise
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        raise ConfigurationError(f"importing app module {spec!r} failed{where}: {type(exc).__name__}: {exc}") from exc


def _import(spec: str) -> ModuleType:
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise ConfigurationError(f"app file {spec} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigurationError(f"cannot import {spec}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and spec.startswith(exc.name):
            raise ConfigurationError(f"cannot import app module {spec!r}: {exc}") from None
        raise


def load_bus(spec: str) -> Bus:
    """The Bus an app module declares its dispatches on.

    ``module:attribute`` names it; otherwise the module must hold exactly one Bus, or
    have declared its dispatches on the default bus.
    """
    module_name, _, attribute = spec.partition(":")
    module = import_app(module_name)
    if attribute:
        value = getattr(module, attribute, None)
        if not isinstance(value, Bus):
            raise ConfigurationError(f"{module_name}:{attribute} is not a bus.Bus")
        return value
    found = dict(iter_buses(vars(module)))
    distinct = {id(b): b for b in found.values()}
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    if len(distinct) > 1:
        names = ", ".join(sorted(found))
        raise ConfigurationError(f"{module_name} holds several buses ({names}); name one as {module_name}:NAME")
    import bus as bus_package

    if bus_package._default is not None and bus_package._default.dispatches:
        return bus_package._default
    raise ConfigurationError(f"{module_name} declares no bus.Bus with subscriptions")
