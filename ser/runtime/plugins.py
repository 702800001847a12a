"""Model families, corpus kinds, extractor kinds and heads kept outside ser: the modules
named in the `SER_PLUGINS` environment variable (comma-separated) and those installed
with an entry point in the group `ser.plugins`, imported before any command reads a
registry. A plugin registers what it defines as ser's own modules do (one `register(...)`
line), and every command and the Python API can use it; docs/dev/add-family.md shows a
family kept in a package of the user's own.

Importing them is all this does: Python imports a module once a process, so a second call
(the CLI, then the library it calls) costs nothing and registers nothing twice. A process
pool's workers import them as they unpickle what they train.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable
from functools import partial
from importlib.metadata import entry_points

from ser.errors import ConfigError

ENV = "SER_PLUGINS"
GROUP = "ser.plugins"


def load_plugins() -> tuple[str, ...]:
    """Import every plugin (`SER_PLUGINS`' modules, then the `ser.plugins` entry points);
    the names imported. `ConfigError` naming the one that fails, and why, in one line."""
    named = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    for name in named:
        _contained(partial(importlib.import_module, name), f"plugin {name!r} (from {ENV})")
    installed = list(entry_points(group=GROUP))
    for point in installed:
        where = f"entry point {point.value} in the group {GROUP}, installed with {_package(point)}"
        _contained(point.load, f"plugin {point.name!r} ({where})")
    return (*named, *(p.name for p in installed))


def _contained(load: Callable[[], object], what: str) -> None:
    """`load()` a plugin, its prints on stderr (stdout is the commands' own: `--json`);
    whatever it raises, `SystemExit` and `KeyboardInterrupt` included, is one line naming
    it (`ConfigError`): a plugin can neither end ser nor hide why it failed."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            load()
    except BaseException as e:  # a plugin's own fault, whatever it is
        raise ConfigError(f"{what} failed to load: {_why(e)}") from e


def _why(error: BaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _package(point: object) -> str:
    dist = getattr(point, "dist", None)
    return f"the package {dist.name!r}" if dist is not None else "a package"
