"""The learnt layer weights of a run on a layered input (`--features <stem>.L*`): per
layer, the mean ± sample std of the softmax weights over the run's fold entries (folds x
seeds), as `ser train` prints them, `ser report` shows them and `--plots` draws them.

>>> run = RunRecord.from_json({
...     "name": "probe", "config": {}, "protocol": "loso", "classes": [],
...     "layers": {"enc.L0-2": {"sets": ["enc.L0", "enc.L1", "enc.L2"], "layers": [0, 1, 2]}},
...     "folds": [{"seed": 0, "fold": f"fold{k}", "metrics": {}, "layer_weights": {"enc.L0-2": w}}
...               for k, w in enumerate([[0.2, 0.5, 0.3], [0.2, 0.7, 0.1]])]})
>>> (w,) = layer_weights(run)
>>> w.peak, w.n, peak_label(run)
(1, 2, 'enc.L0-2: L1 0.600 ± 0.141 (uniform 0.333)')
>>> weights_lines(run)[1]
'  L0 0.200 ± 0.000, L1 0.600 ± 0.141, L2 0.200 ± 0.141'
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ser.runs.record import RunRecord


@dataclass(frozen=True)
class LayerWeights:
    """One layered input's weights over a run's fold entries."""

    input: str  # e.g. "hubert-base-ls960.L0-12"
    layers: tuple[int, ...]  # the encoder's layer numbers, in order
    mean: tuple[float, ...]  # [L] mean softmax weight of each layer
    std: tuple[float, ...]  # [L] sample std (0.0 for one entry: shown without ±)
    n: int  # fold entries (every fold of every seed)

    @property
    def peak(self) -> int:
        """The layer with the largest mean weight."""
        return self.layers[int(np.argmax(self.mean))]

    def value(self, i: int) -> str:
        """Layer i's "0.452 ± 0.041", or "0.452" for one entry (never ± 0.000 for n = 1)."""
        return f"{self.mean[i]:.3f}" + (f" ± {self.std[i]:.3f}" if self.n > 1 else "")


def layer_weights(run: RunRecord) -> list[LayerWeights]:
    """Each layered input's weights over the run's fold entries; [] for other runs."""
    entries = [f.layer_weights for f in run.folds if f.layer_weights]
    names = list(dict.fromkeys(name for entry in entries for name in entry))
    out = []
    for name in names:
        rows = np.array([entry[name] for entry in entries if name in entry], dtype=np.float64)
        recorded = run.layers[name].layers if name in run.layers else ()
        layers = tuple(recorded) if recorded else tuple(range(rows.shape[1]))
        std = rows.std(axis=0, ddof=1) if len(rows) > 1 else np.zeros(rows.shape[1])
        out.append(LayerWeights(name, layers, tuple(rows.mean(0)), tuple(std), len(rows)))
    return out


def peak_label(run: RunRecord) -> str:
    """A report cell: each input's heaviest layer, its weight and the uniform 1/L it
    started from, e.g. "enc.L0-12: L9 0.213 ± 0.020 (uniform 0.077)"; "" for none."""
    parts = []
    for w in layer_weights(run):
        i = w.layers.index(w.peak)
        parts.append(f"{w.input}: L{w.peak} {w.value(i)} (uniform {1 / len(w.layers):.3f})")
    return "; ".join(parts)


def weights_lines(run: RunRecord) -> list[str]:
    """What `ser train` prints after its table: per input, a heading and every layer."""
    lines = []
    for w in layer_weights(run):
        seeds = len({f.seed for f in run.folds if f.layer_weights})
        over = f"mean ± std over {w.n} fold entries" if w.n > 1 else "1 fold entry"
        over += f" ({seeds} seeds)" if seeds > 1 else ""
        lines.append(
            f"layer weights of {w.input} (softmax, {over}; uniform "
            f"{1 / len(w.layers):.3f}), largest L{w.peak}:"
        )
        lines.append("  " + ", ".join(f"L{n} {w.value(i)}" for i, n in enumerate(w.layers)))
    return lines


def weights_json(run: RunRecord) -> str:
    """The CSV cell: {input: {"layers", "mean", "std", "n"}} as compact JSON; "" for none."""
    found = {
        w.input: {
            "layers": list(w.layers),
            "mean": [round(m, 4) for m in w.mean],
            "std": [round(s, 4) for s in w.std] if w.n > 1 else None,
            "n": w.n,
        }
        for w in layer_weights(run)
    }
    return json.dumps(found, separators=(",", ":")) if found else ""
