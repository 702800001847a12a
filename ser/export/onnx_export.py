"""`ser export --onnx`: the head's graph, and with `--with-encoders` each speech
encoder's, under onnx/; config.json's `onnx` says what each graph takes and gives and its
file's checksum. A head that does not export stops the export with why (its family); an
encoder that does not export is a note naming it, the head being useful without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ser.errors import ConfigError
from ser.export.folder import HEAD_ONNX, ONNX
from ser.export.onnx_encoder import export_encoder
from ser.export.onnx_encoder import refusal as encoder_refusal
from ser.export.onnx_head import export_head, refusal
from ser.export.onnx_io import check_exporter, file_sha256
from ser.train.checkpoint import Checkpoint


def check_onnx(ckpt: Checkpoint) -> None:
    """`ConfigError` when the head cannot export (no exporter, a family that does not)."""
    check_exporter()
    why = refusal(ckpt)
    if why is not None:
        raise ConfigError(f"--onnx: {why}")


def export_onnx(
    ckpts: Sequence[Checkpoint],
    encoders: Mapping[str, Mapping[str, Any]],
    folder: Path,
    with_encoders: bool,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Write the graphs into folder/onnx; (config.json's `onnx`, notes)."""
    check_exporter()
    where = folder / ONNX
    where.mkdir(exist_ok=True)
    head = export_head(ckpts, where / HEAD_ONNX)
    head["sha256"] = file_sha256(where / HEAD_ONNX)
    made: dict[str, Any] = {}
    notes: list[str] = []
    for location, entry in encoders.items():
        if entry["role"] != "features":
            continue  # a Whisper that made ASR text: runs as in torch
        sets = {n: ckpts[0].features[n]["attrs"] for n in entry["sets"]}
        why = encoder_refusal(next(iter(sets.values())))
        name = Path(location).name
        if why is not None:
            notes.append(f"{name}: {why}")
        elif not with_encoders:
            notes.append(
                f"{name}: not exported (its files are not in the folder: add --with-encoders)"
            )
        else:
            graph = where / f"{_stem(name, made)}.onnx"
            made[location] = export_encoder(sets, str(folder / str(entry["files"])), graph)
            made[location]["sha256"] = file_sha256(graph)
    config = {
        "exporter": f"torch.onnx.export (dynamo) of torch {torch.__version__}",
        "head": head,
        "encoders": made,
    }
    return config, tuple(notes)


def _stem(name: str, made: Mapping[str, Any]) -> str:
    taken = {Path(m["file"]).stem for m in made.values()} | {Path(HEAD_ONNX).stem}
    stem, n = name, 1
    while stem in taken:
        n += 1
        stem = f"{name}-{n}"
    return stem
