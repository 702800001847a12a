"""Which files under ser/ does a plain `ser train` run enter? A tiny
`ser train --features is13 --fusion none` (one seed, one fold, one epoch, on the CPU, in
this process, through the command line's own entry) on a synthetic store, traced with
`sys.setprofile` from the command's start to its written run.json. Prints the distinct
files whose functions ran (every depth) and, apart, those under ser/train/ and the
cross-corpus and vote modules a plain run should not enter.

    python benchmarks/files_entered.py           # the counts
    python benchmarks/files_entered.py --list    # and the files
    python benchmarks/files_entered.py --fusion mit --features hubert+bert
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

import ser  # noqa: E402
from ser.cli import main as cli  # noqa: E402
from tests.stores import labelled_store  # noqa: E402

PACKAGE = Path(ser.__file__).resolve().parent
SETS = {
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}
# Modules a plain (one-corpus, hard-label) run has no business in.
OFF_PATH = ("train/cross.py", "corpus/votes.py", "runs/cross.py", "protocols/cross.py")


def entered(args: list[str]) -> list[str]:
    """The files under ser/ whose functions ran during `ser *args`, in first-entry order."""
    seen: dict[str, None] = {}

    def profile(frame: FrameType, event: str, arg: Any) -> None:  # sys.setprofile's hook
        # module and class bodies (imports) are not functions: CO_OPTIMIZED marks those
        if event != "call" or not frame.f_code.co_flags & 0x1:
            return
        path = frame.f_code.co_filename
        if path.startswith(str(PACKAGE)):
            seen.setdefault(str(Path(path).relative_to(PACKAGE)), None)

    runner = CliRunner()
    sys.setprofile(profile)
    try:
        result = runner.invoke(cli, args)
    finally:
        sys.setprofile(None)
    if result.exit_code != 0:
        raise SystemExit(f"ser train failed: {result.output}{result.exception!r}")
    return list(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the files too")
    parser.add_argument("--features", default="is13")
    parser.add_argument("--fusion", default="none")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "features.zarr"
        labelled_store(store, SETS)
        out = Path(tmp) / "runs"
        files = entered(
            [
                "train",
                "--store",
                str(store),
                "--features",
                args.features,
                "--fusion",
                args.fusion,
                "--classes",
                "4",
                "--protocol",
                "session5",
                "--epochs",
                "1",
                "--seeds",
                "1",
                "--device",
                "cpu",
                "--processes",
                "1",
                "--out",
                str(out),
            ]
        )
        assert list(out.rglob("run.json")), "no run.json written"
    train = [f for f in files if f.startswith("train/")]
    off = [f for f in files if f.endswith(OFF_PATH)]
    if args.list:
        print("\n".join(files), end="\n\n")
    print(f"ser/ files entered: {len(files)}")
    print(f"ser/train files entered: {len(train)}")
    print(f"cross-corpus / vote files entered: {len(off)} {off}")


if __name__ == "__main__":
    main()
