"""torch's ONNX exporter (`torch.onnx.export`, dynamo: a `torch.export` graph translated
by onnxscript) run quietly, with dynamic axes, its failures said in one line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ser.cache.atomic import writing
from ser.errors import ConfigError
from ser.export.folder import AGAIN

#: What `ser export --onnx` needs beyond ser's own dependencies.
NEEDS = "pip install 'ser[export]' (onnx, onnxscript, onnxruntime)"


def check_exporter() -> None:
    """`ConfigError` when the exporter's dependencies are missing."""
    for module in ("onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            raise ConfigError(f"--onnx needs {module}: {NEEDS}") from None


def save_onnx(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    shapes: tuple[Any, ...],
    inputs: Sequence[str],
    outputs: Sequence[str],
    path: Path,
    what: str = "the model head",
) -> None:
    """Export `module` traced on `example` (`shapes`: `torch.export` dynamic shapes per
    input) to `path` as one file (weights inside); `ConfigError` naming `what` and the
    exporter's reason when it cannot."""
    check_exporter()
    said = io.StringIO()
    logger = logging.getLogger("torch.onnx")  # its registry warns of every optional library
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with (
            torch.no_grad(),
            warnings.catch_warnings(),
            contextlib.redirect_stdout(said),
            contextlib.redirect_stderr(said),
        ):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                example,
                dynamic_shapes=shapes,
                input_names=list(inputs),
                output_names=list(outputs),
                external_data=False,
                verbose=False,
            )
    except Exception as err:  # the exporter's own errors have no common base
        reason = exporter_reason(err)
        raise ConfigError(f"--onnx: {what} does not export to ONNX ({reason})") from None
    finally:
        logger.setLevel(level)
    if program is None:
        raise ConfigError(f"--onnx: torch's exporter gave no program for {what}")
    without_traces(program.model)
    with writing(path, f"the ONNX graph of {what}", AGAIN):
        program.save(str(path), external_data=False)


def without_traces(model: Any) -> None:
    """Drop the exporter's notes on each node (`metadata_props`: its stack traces name
    this machine's files, the ser install's absolute paths); nothing runs on them. `model`:
    the exporter's `onnx_ir.Model` (untyped here: onnx_ir comes with onnxscript)."""
    from onnx_ir.traversal import RecursiveGraphIterator

    for graph in (model.graph, *model.functions.values()):
        for node in RecursiveGraphIterator(graph):
            node.metadata_props.clear()


def exporter_reason(err: BaseException) -> str:
    """The line of an exporter's error that says why (its "Exception summary"), else
    its first line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if "## Exception summary" in lines[:-1]:
        return lines[lines.index("## Exception summary") + 1][:300]
    return lines[0][:300] if lines else type(err).__name__


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (an ONNX graph as exported, checked before it is run)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
