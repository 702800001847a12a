"""The package's architecture, read from its source with `ast`: no import circles, nothing
loose at the top of `ser/`, imports running one way through `LAYERS`, no module over
`MAX_LINES` lines: a bound that catches a module holding two concepts, not a target to
split to (a module is split along a seam, one concept each: docs/dev/README.md).

What counts as an import: every ``import`` and ``from ... import`` statement anywhere in
a module (under ``if TYPE_CHECKING:`` and inside functions too), resolved to the ser
modules it names. ``from ser.pkg import x`` reads ``ser.pkg.x`` when x is a submodule
and ``ser.pkg`` (its ``__init__``) otherwise; ``import ser.pkg.mod`` reads
``ser.pkg.mod``. That a package's ``__init__`` runs before its submodules is not an
edge (else every submodule would depend on its package); so a submodule that takes a
name from its own package's ``__init__``, which imports that submodule, is a circle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SER = Path(__file__).resolve().parents[1] / "ser"
MAX_LINES = 600
TOP_LEVEL = {"__init__.py", "cli.py", "errors.py"}

# Lowest first; a module may import its own unit and the units of lower layers, never a
# higher layer nor another unit of its own layer (units side by side do not know each
# other). A module's unit is the longest entry its name starts with.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ser", "ser.errors"),  # the version and the error types
    ("ser.runtime",),  # device, precision, threads, cluster: decided in one place
    ("ser.corpus",),  # corpus kinds: their records and label sets
    ("ser.cache",),  # the feature store (its manifest holds corpus records)
    ("ser.synth",),  # synthetic corpus, tiny models, made-up manifests
    ("ser.heads",),  # what a run predicts: each head's gold, loss, metrics and columns
    ("ser.runs",),  # run records: their typed fields, predictions.csv, older formats read
    ("ser.track",),  # a run watched while it trains: MLflow, TensorBoard, progress hooks
    # Stage 1's extractors; the papers' model families, their blocks, batches and losses:
    ("ser.extract", "ser.models"),
    ("ser.finetune",),  # an encoder's top layers on the hidden states extract cached
    ("ser.train",),  # plans, runs and executes ensembles of the models
    # tables and plots of the run records training writes (what each option is, and how
    # it is shown, from `ser train`'s declaration of it)
    ("ser.report",),
    ("ser.export",),  # a run's checkpoints as a folder that stands alone (and ONNX)
    ("ser.predict", "ser.sweep"),  # checkpoints applied to new audio; grids of runs
    ("ser.api",),  # ser as a Python library: stores, folds, datasets, train, load
    ("ser.commands",),  # click, thin
    ("ser.cli",),
)


# The edges that go up, to the Python API: `ser` names it (`ser.open_store`, ...) for mypy
# and imports it in its module `__getattr__` when first used, never when `ser` is imported;
# the package `ser.train`, called (``ser.train(...)``), calls the API's `train`.
# `ser.metrics` is the module `ser.api.metrics`, named the same way.
FACADE = {"ser": {"ser.api", "ser.api.metrics"}, "ser.train": {"ser.api.training"}}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SER.rglob("*.py"):
        parts = list(path.relative_to(SER.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _known(name: str) -> str | None:
    """The ser module `name` is, or is inside (a name defined in it)."""
    while name not in MODULES:
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str, source: str | None = None) -> set[str]:
    """The ser modules `module` imports (see the module docstring); `source` stands in
    for its file's text."""
    path = MODULES.get(module)
    is_package = path is not None and path.name == "__init__.py"
    package = module if is_package else module.rsplit(".", 1)[0]
    if source is None:
        source = MODULES[module].read_text(encoding="utf-8")
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(_known(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.update(_known(f"{base}.{alias.name}") for alias in node.names)
    return {name for name in found if name is not None and name != module}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        work = [(root, iter(sorted(graph[root])))]
        while work:
            node, edges = work[-1]
            target = next(edges, None)
            if target is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = stack[stack.index(node) :]
                    del stack[stack.index(node) :]
                    if len(component) > 1:
                        found.append(sorted(component))
            elif target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                work.append((target, iter(sorted(graph.get(target, ())))))
            elif target in stack:
                low[node] = min(low[node], index[target])
    return sorted(found)


@functools.cache  # read only: every check over ser/ reads the one parse
def import_graph() -> dict[str, set[str]]:
    """Each ser module's imports, but `FACADE`'s."""
    return {module: imports(module) - FACADE.get(module, set()) for module in MODULES}


def unit(module: str) -> tuple[int, str] | None:
    """(layer, unit) of a module: the longest `LAYERS` entry it is or is inside."""
    matches = [
        (len(entry), layer, entry)
        for layer, entries in enumerate(LAYERS)
        for entry in entries
        if module == entry or (entry != "ser" and module.startswith(entry + "."))
    ]
    return max(matches)[1:] if matches else None


def test_no_import_circles() -> None:
    assert circles(import_graph()) == []


REPOSITORY = SER.parent
# The repository's Python outside ser/: each folder runs with itself on sys.path, so its
# files import each other by bare name (benchmarks) or by their package (tests).
SCRIPTS = {"benchmarks": "", "tests": "tests.", "scripts": ""}


def script_imports(path: Path, names: dict[str, Path]) -> set[str]:
    """The repository files outside ser/ that `path` imports, by their module names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in names}


def script_graph() -> dict[str, set[str]]:
    names: dict[str, Path] = {}
    for folder, prefix in SCRIPTS.items():
        for path in (REPOSITORY / folder).rglob("*.py"):
            parts = path.relative_to(REPOSITORY / folder).with_suffix("").parts
            names[prefix + ".".join(parts)] = path
    return {name: script_imports(path, names) - {name} for name, path in names.items()}


def test_no_import_circles_in_benchmarks_tests_or_scripts() -> None:
    """A circle there is as hard to follow as one in ser/ (and breaks when either file
    runs as a script)."""
    assert circles(script_graph()) == []


def test_every_import_counts() -> None:
    """The rules the checks rely on: hidden imports count, and so does a name taken from
    a package's __init__ (a circle when the __init__ imports the submodule back)."""
    source = """
from typing import TYPE_CHECKING
from ser.cache import Manifest, fingerprint
from . import shards
if TYPE_CHECKING:
    from ser.train.recipe import train
def later():
    import ser.report.runs
"""
    assert imports("ser.cache.lock", source) == {
        "ser.cache", "ser.cache.fingerprint", "ser.cache.shards", "ser.train.recipe",
        "ser.report.runs",
    }  # fmt: skip
    graph = {"ser.a": {"ser.a.b"}, "ser.a.b": {"ser.a"}, "ser.c": {"ser.a"}}
    assert circles(graph) == [["ser.a", "ser.a.b"]]


def test_nothing_loose_at_the_top() -> None:
    loose = {p.name for p in SER.glob("*.py")} - TOP_LEVEL
    assert loose == set(), "modules at the top of ser/ belong in a folder"
    folders = [p for p in SER.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert [f.name for f in folders if not (f / "__init__.py").is_file()] == []


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in sorted(MODULES) if m != "ser" and unit(m) in (None, (0, "ser"))]
    assert unplaced == [], "add the package to LAYERS"


def against_layers(graph: dict[str, set[str]]) -> list[str]:
    """The edges that go up a layer or across to another unit of the same layer."""
    wrong = []
    for module in sorted(graph):
        layer, own = unit(module) or (0, "ser")
        for target in sorted(graph[module]):
            target_layer, target_unit = unit(target) or (0, "ser")
            if target_layer > layer or (target_layer == layer and target_unit != own):
                wrong.append(f"{module} -> {target}")
    return wrong


def test_imports_run_one_way() -> None:
    assert against_layers(import_graph()) == []


def test_a_wrong_way_import_is_found() -> None:
    graph = {
        "ser.cache.store": {"ser.corpus.records", "ser.cache.lock", "ser.train.recipe"},
        "ser.predict.run": {"ser.sweep.grid", "ser.errors"},
    }
    assert against_layers(graph) == [
        "ser.cache.store -> ser.train.recipe", "ser.predict.run -> ser.sweep.grid"
    ]  # fmt: skip


# The trainer a researcher changes stays a few types: a concept split in two is merged,
# a type another layer owns is moved there, never hidden (nested, `type(...)`, a dict).
# What a run is asked (`TrainConfig`) and what it runs with (`ResolvedConfig`) are two.
MAX_TRAIN_CLASSES = 36


def test_the_trainer_holds_few_classes() -> None:
    trainer = [p for m, p in MODULES.items() if m == "ser.train" or m.startswith("ser.train.")]
    classes = [
        f"{path.relative_to(SER.parent)}: {node.name}"
        for path in trainer
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    ]
    assert len(classes) <= MAX_TRAIN_CLASSES, (
        f"ser/train holds {len(classes)} classes, over {MAX_TRAIN_CLASSES}: the trainer a "
        "researcher reads and changes stays a few types; merge one concept split in two, or "
        "move a class to the module that owns its concept (docs/dev/README.md)\n"
        + "\n".join(sorted(classes))
    )


def test_no_module_over_max_lines() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
