"""How many times does following `ser train` through the code enter each file? A tiny
`ser train --features hubert+bert --fusion mit` (one seed, one fold: one group of one
member, one epoch, on the CPU, in this process) on a synthetic store, traced with
`sys.setprofile`; prints the stops per file under ser/, most first, and the path.

The counting rule:

- A *recipe frame* runs code of ser/train/recipe.py. A *step frame* is a frame that a
  recipe frame called (a step of the recipe: `prepare`, `train_group`, ...).
- Comprehensions, generator expressions and lambdas (code named ``<...>``) are part of
  the function they are written in: such a frame counts as its nearest enclosing
  frame that is not one, and a call into one is not a call.
- Counted: every call into a function whose file is under ser/ (a resumed generator
  is not a new call) whose caller is a recipe frame or a step frame, in the order
  the calls happen.
- The sequence of the counted calls' files, consecutive calls into one file collapsed
  into one *stop*. A file's figure is its stops.
- `--depth 3` (not the default) counts the calls of the steps' callees too.

So `prepare -> start_record` is a stop in record.py (prepare is a step), while what
`start_record` calls is not counted (it is two calls below the recipe).

    python benchmarks/trace_path.py            # the table
    python benchmarks/trace_path.py --path     # and every stop, with the call that made it
    python benchmarks/trace_path.py --depth 3  # the steps' callees' calls counted too
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ser  # noqa: E402
from ser.models import ModelConfig  # noqa: E402
from ser.train.recipe import TrainConfig, train  # noqa: E402
from tests.stores import labelled_store  # noqa: E402

PACKAGE = Path(ser.__file__).resolve().parent
RECIPE = str(PACKAGE / "train" / "recipe.py")
# name -> (extractor, modality, level, dim, dtype): a frame-level audio set, a token-level text set
SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}


def _enclosing(frame: FrameType | None) -> FrameType | None:
    """`frame`, or the function a comprehension / lambda frame is written in."""
    while frame is not None and frame.f_code.co_name.startswith("<"):
        frame = frame.f_back
    return frame


def _counted(caller: FrameType | None, depth: int) -> bool:
    """Whether a call made by `caller` counts: made by a recipe frame or a frame at most
    `depth` - 1 calls below one (depth 2: a step frame)."""
    for _ in range(depth):
        caller = _enclosing(caller)
        if caller is None:
            return False
        if caller.f_code.co_filename == RECIPE:
            return True
        caller = caller.f_back
    return False


def trace(config: TrainConfig, depth: int = 2) -> list[tuple[str, str]]:
    """The counted calls of `train(config)`: (file relative to ser/, caller -> callee)."""
    calls: list[tuple[str, str]] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:  # sys.setprofile's hook
        if event != "call" or frame.f_code.co_name.startswith("<"):
            return
        if frame.f_lasti >= 0 and frame.f_code.co_flags & 0x20:  # a generator resumed
            return
        path = frame.f_code.co_filename
        if not path.startswith(str(PACKAGE)) or not _counted(frame.f_back, depth):
            return
        caller = _enclosing(frame.f_back)
        assert caller is not None  # _counted said so
        file = str(Path(path).relative_to(PACKAGE))
        calls.append((file, f"{caller.f_code.co_name} -> {frame.f_code.co_qualname}"))

    sys.setprofile(profile)
    try:
        train(config)
    finally:
        sys.setprofile(None)
    return calls


def stops(calls: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Consecutive calls into one file collapsed: (file, its calls) per stop."""
    out: list[tuple[str, list[str]]] = []
    for file, call in calls:
        if out and out[-1][0] == file:
            out[-1][1].append(call)
        else:
            out.append((file, [call]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", action="store_true", help="print every stop too")
    parser.add_argument(
        "--depth", type=int, default=2, help="count calls made this many calls below the recipe"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "features.zarr"
        labelled_store(store, SETS)
        config = TrainConfig(
            store=str(store),
            features=("hubert", "bert"),
            model=ModelConfig(fusion="mit"),
            classes="4",
            protocol="session5",  # one fold: one group of one member
            epochs=1,
            batch_size=8,
            seeds=1,
            device="cpu",
            processes=1,
            out=str(Path(tmp) / "runs"),
        )
        path = stops(trace(config, args.depth))
    if args.path:
        for file, calls in path:
            print(f"{file:28} {'; '.join(dict.fromkeys(calls))}")
        print()
    counts = Counter(file for file, _ in path)
    print(f"{'file':28} stops")
    for file, n in counts.most_common():
        print(f"{file:28} {n}")
    print(f"{'(all)':28} {sum(counts.values())}")


if __name__ == "__main__":
    main()
