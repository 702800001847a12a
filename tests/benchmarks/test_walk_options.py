"""benchmarks/walk_options.py's counting rule on a tiny package of three modules written
here (which calls it follows, in what order, how entries collapse into stops), and its
walk of ser's own `ser train`, so that new syntax in ser cannot break it unseen."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

COMMAND = """
from pkg.plan import Config, resolve
from pkg import store as st


def start(flag, **options):
    config = resolve(options)
    helper()  # no tainted argument: not followed
    st.open_store(config.path)
    if flag:
        raise ValueError(st.describe(config))  # an error branch: followed all the same
    return finish(config)


def helper():
    return unrelated_too(1)


def unrelated_too(x):
    return x


def finish(config: "Config"):
    return config.check()  # the class known from the annotation
"""

PLAN = """
class Config:
    def __init__(self, path):
        self.path = path

    def check(self):
        return check_path(self.path)

    @property
    def name(self):
        return named(self.path)


def resolve(options) -> Config:
    config = Config(options["path"])
    config.check()
    return config


def check_path(path):
    return path


def named(path):
    return path
"""

STORE = """
from pkg.plan import Config


class Store:
    def read(self):
        return 1


def open_store(path):
    store = Store()
    return store.read()  # the store is not made from the options: not followed


def describe(config: Config):
    return describe(config) if config.deep else config.name  # recursion; a property
"""


@pytest.fixture(scope="module")
def walker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("walk_options", BENCHMARKS / "walk_options.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["walk_options"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_walk_follows_tainted_calls_in_depth_first_order(
    walker: ModuleType, tmp_path: Path
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in {"cmd": COMMAND, "plan": PLAN, "store": STORE}.items():
        (package / f"{name}.py").write_text(text)
    found = walker.walk(package, "pkg/cmd.py:start")
    path = walker.stops(found.entries)
    assert [file for file, _ in path] == [
        "cmd.py",  # start
        "plan.py",  # resolve, Config.__init__, Config.check, check_path
        "store.py",  # open_store, describe, describe again (an entry, walked once)
        "plan.py",  # describe -> Config.name (a property), named
        "cmd.py",  # finish
        "plan.py",  # Config.check again: an entry, not walked again
    ]
    assert path[1][1] == [
        "start -> resolve",
        "resolve -> Config.__init__",
        "resolve -> Config.check",
        "Config.check -> check_path",
    ]
    assert path[2][1] == ["start -> open_store", "start -> describe", "describe -> describe"]
    walked = {f.qualname for f in found.walked}
    assert not walked & {"helper", "unrelated_too", "Store.read"}
    result = walker.figure(found)
    assert (result["stops"], result["files"], result["returns"]) == (6, 3, 3)
    assert result["per_file"] == {"plan.py": 3, "cmd.py": 2, "store.py": 1}


@pytest.mark.slow  # it parses all of ser: seconds
def test_the_walk_of_ser_train_starts_at_the_command_and_reaches_the_recipe(
    walker: ModuleType,
) -> None:
    found = walker.walk(BENCHMARKS.parent / "ser", walker.START)
    result = walker.figure(found)
    path = walker.stops(found.entries)
    assert path[0] == ("commands/train.py", ["(start) -> train_command"])
    assert {"train/recipe.py", "train/options.py", "train/plan.py"} <= set(result["per_file"])
    assert result["stops"] > result["files"] > 3
