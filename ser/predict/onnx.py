"""`ser predict --model FOLDER --runtime onnx`: the exported ONNX graphs on onnxruntime.

The head graph replaces the members' torch forward (its members' average, as
`ensemble.py` gives); each exported speech encoder replaces its extractor, one utterance
at a time (as `ser extract` runs the conv front end on the CPU). Feature sets no graph
makes (text encoders, openSMILE, log-mel, an encoder exported without its files) are made
by ser's own extractors, as with `--runtime torch`. Each graph's file is checked against
the checksum config.json recorded before it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.errors import ConfigError
from ser.export.folder import HEAD_ONNX, Exported
from ser.export.onnx_head import OUTPUTS
from ser.export.onnx_io import file_sha256
from ser.train.checkpoint import Checkpoint

if TYPE_CHECKING:  # onnxruntime is imported where a session opens: it is optional
    from onnxruntime import InferenceSession

#: Utterances per head call (padded to the longest of them).
BATCH = 64
NEEDS = "--runtime onnx needs onnxruntime: pip install 'ser[export]'"


@dataclass
class OnnxRun:
    """The sessions of an exported folder's graphs."""

    head: InferenceSession
    # location -> (session, its config)
    encoders: dict[str, tuple[InferenceSession, dict[str, Any]]]
    threads: int

    @property
    def sets(self) -> set[str]:
        """The stored sets the encoder graphs make."""
        return {name for _, info in self.encoders.values() for name in info["outputs"]}

    def extract(
        self, waves: Sequence[np.ndarray | None], failed: dict[int, str]
    ) -> dict[str, list[np.ndarray | None]]:
        """Each encoder graph's sets of each wave ([rows, D] float32; None where failed)."""
        out: dict[str, list[np.ndarray | None]] = {name: [None] * len(waves) for name in self.sets}
        for session, info in self.encoders.values():
            for i, wave in enumerate(waves):
                if wave is None or i in failed:
                    continue
                if len(wave) < int(info["min_samples"]):
                    failed[i] = (
                        f"audio too short for the speech encoder's graph ({len(wave)} samples)"
                    )
                    continue
                made = session.run(None, {"waveform": np.asarray(wave, np.float32)[None]})
                for name, rows in zip(info["outputs"], made, strict=True):
                    out[name][i] = rows[0]
        return out

    def score(
        self, ckpt: Checkpoint, arrays: Mapping[str, Sequence[np.ndarray]]
    ) -> tuple[np.ndarray, ...]:
        """Each head's predictions [N, W] of N utterances (`arrays[set][i]`: utterance
        i's rows of a stored set the model reads), in the run's head order: the graph's
        output of that head (`ser.export.onnx_head.OUTPUTS`)."""
        n = len(next(iter(arrays.values())))
        heads, widths = ckpt.targets.heads, ckpt.targets.widths(len(ckpt.classes))
        made = [np.zeros((n, w), np.float32) for w in widths]
        names = [o.name for o in self.head.get_outputs()]
        for start in range(0, n, BATCH):
            rows = range(start, min(start + BATCH, n))
            out = dict(zip(names, self.head.run(None, _feed(ckpt, arrays, rows)), strict=True))
            for head, into in zip(heads, made, strict=True):
                into[rows.start : rows.stop] = out[OUTPUTS[head.name]]
        return tuple(made)


def _feed(
    ckpt: Checkpoint, arrays: Mapping[str, Sequence[np.ndarray]], rows: range
) -> dict[str, np.ndarray]:
    """The head's inputs for utterances `rows`: each input padded to its longest."""
    feed: dict[str, np.ndarray] = {}
    for spec in ckpt.specs:
        sets = ckpt.stored(spec)
        each = [
            np.stack([arrays[s][i] for s in sets], axis=1)
            if spec.layers > 1
            else arrays[sets[0]][i]
            for i in rows
        ]  # [T, (L,) D] each
        lengths = np.array([len(x) for x in each], dtype=np.int64)
        padded = np.zeros((len(each), int(lengths.max()), *each[0].shape[1:]), np.float32)
        for j, x in enumerate(each):
            padded[j, : len(x)] = x
        feed[spec.name], feed[f"{spec.name}.lengths"] = padded, lengths
    return feed


def open_onnx(exported: Exported, threads: int) -> OnnxRun:
    """The sessions of `exported`'s graphs, each file checked against its checksum."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(NEEDS) from None
    config = exported.config.get("onnx")
    if not config:
        raise ConfigError(
            f"--runtime onnx: {exported.folder} holds no ONNX graphs: export it with --onnx"
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1

    def session(info: Mapping[str, Any]) -> InferenceSession:
        path = exported.folder / "onnx" / str(info["file"])
        if not path.is_file():
            raise ConfigError(f"--runtime onnx: {path} is missing from the exported folder")
        if file_sha256(path) != info.get("sha256"):
            raise ConfigError(
                f"--runtime onnx: {path} is not the graph exported (its checksum differs)"
            )
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    head = session({**config["head"], "file": config["head"].get("file", HEAD_ONNX)})
    encoders = {
        loc: (session(info), dict(info)) for loc, info in config.get("encoders", {}).items()
    }
    return OnnxRun(head, encoders, threads)
