"""`ser report --calibration`: how far each run's class probabilities are from right.

Per run, from its predictions.csv (every fold's test rows of every seed pooled, as the
pooled scores are): the top label's expected calibration error (ECE, percent, 15
equal-width confidence bins: `ser.heads.calibration`); the temperature
`--calibrate temperature` fitted on each fold's validation side (its mean over the
folds; "-": not calibrated, the probabilities are the softmax's own); and, where the
corpus has annotators' votes (IEMOCAP), the mean Jensen-Shannon divergence (base 2, the
divergence: scipy's distance squared) of the test utterances' vote distribution to the
model's probabilities and to the one-hot majority label (recorded at training time:
`ser.train.calibration`). `--plots` with it draws ``<name>_reliability.png`` per run.

>>> import numpy as np
>>> from ser.runs.predictions import PredictionTable
>>> t = PredictionTable.of(("neu", "ang"), 0, "f1", ["a", "b"], ["F", "M"], [0, 1],
...                        [0, 1], [0, 0], np.array([[0.9, 0.1], [0.6, 0.4]]))
>>> from ser.runs.record import RunRecord
>>> print(calibration_table([(RunRecord("r", {}, "loso", ()), ("r", t))], "csv"), end="")
run,ece,n,temperature,jsd_votes,jsd_majority,voted
r,35.00,2,,,,
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ser.heads.calibration import ECE_BINS, reliability
from ser.report.runs import markdown_table
from ser.runs.predictions import PredictionTable
from ser.runs.record import RunRecord

if TYPE_CHECKING:  # plots only: matplotlib takes a second to import
    from matplotlib.figure import Figure

HEADER = {
    "md": (
        "run",
        f"ECE (top label, {ECE_BINS} bins)",
        "n",
        "temperature",
        "JSD to votes",
        "JSD majority to votes",
        "voted",
    ),
    "csv": ("run", "ece", "n", "temperature", "jsd_votes", "jsd_majority", "voted"),
}
LEGEND = (
    f"ECE: expected calibration error of the top label (percent): the test predictions of "
    f"every fold and seed in {ECE_BINS} equal-width bins of confidence (the largest class "
    "probability), the bins' |accuracy - mean confidence| weighted by their share. "
    "temperature: the mean over folds of the T that --calibrate temperature fitted on each "
    "fold's validation side (-: not calibrated). JSD to votes: the mean Jensen-Shannon "
    "divergence (base 2, 0 to 1: scipy's jensenshannon distance squared) of the test "
    "utterances' annotator vote distribution to the model's probabilities; JSD majority: "
    "to the one-hot majority label; voted: the test utterances with votes (-: none)."
)
Scored = tuple[RunRecord, tuple[str, PredictionTable]]  # a record, its label and predictions


def calibration_table(runs: Sequence[Scored], fmt: str = "md") -> str:
    """A row per run (markdown: `LEGEND` under it); "-" (CSV: empty) where a run has
    no class probabilities, no temperature or no votes."""
    none = "" if fmt == "csv" else "-"
    rows = []
    for record, (label, table) in runs:
        scored = len(table) and table.classes
        ece = f"{reliability(table.probs, table.gold).ece:.2f}" if scored else none
        rows.append([label, ece, str(len(table)), *_recorded(record, none)])
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([HEADER["csv"], *rows])
        return buffer.getvalue()
    return "\n".join([*markdown_table(HEADER["md"], rows), "", LEGEND]) + "\n"


def _recorded(run: RunRecord, none: str) -> list[str]:
    """The mean temperature, the votes' two JSDs (weighted by each fold's voted
    utterances) and how many voted, as the run's fold entries recorded them."""
    temperatures = [e.temperature for e in run.folds if e.temperature is not None]
    voted = [e.votes for e in run.folds if e.votes]
    n = sum(float(v["n"]) for v in voted)
    jsd = [sum(v[k] * v["n"] for v in voted) / n if n else None for k in ("model", "majority")]
    return [
        f"{np.mean(temperatures):.2f}" if temperatures else none,
        *(none if j is None else f"{j:.4f}" for j in jsd),
        str(int(n)) if voted else none,
    ]


def plot_reliability(fig: Figure, table: PredictionTable, title: str) -> bool:
    """The reliability diagram of the table's class probabilities: each bin's accuracy
    against its confidence (bars, counts above), the diagonal; False: no classes."""
    if not (len(table) and table.classes):
        return False
    bins = reliability(table.probs, table.gold)
    fig.set_size_inches(5.0, 4.6)
    ax = fig.add_subplot()
    width = bins.edges[1] - bins.edges[0]
    held = bins.count > 0
    lows = bins.edges[:-1][held]
    ax.bar(lows, bins.accuracy[held], width=width, align="edge", edgecolor="black",
           linewidth=0.5, color="tab:blue", label="accuracy")  # fmt: skip
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="perfect calibration")
    for lo, acc, count in zip(lows, bins.accuracy[held], bins.count[held], strict=True):
        ax.text(lo + width / 2, min(acc, 0.95) + 0.01, str(int(count)), ha="center", fontsize=6)
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="confidence (largest probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE {bins.ece:.2f} % ({ECE_BINS} bins), n={len(table)}", fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return True
