"""The submission file of the MSP-Podcast emotion challenge (Odyssey 2024; the same
tasks at Interspeech 2025) from `ser predict`'s result (`--challenge-csv`).

Task 1 (categorical): `FileName,EmoClass`, the class as the corpus's letter (A S H U F D
C N for the 8 primary emotions); task 2 (attributes): `FileName,EmoAct,EmoVal,EmoDom` on
the 1-7 scale, clipped to it as the organisers' baseline writes its Test3 predictions
(`eval_dim_ser_test3.py` of github.com/msplabresearch/MSP-Podcast_Challenge). Rows are
sorted by file name. The task follows from what the run predicts; docs/predict.md says more.

>>> from types import SimpleNamespace as S
>>> rows = [S(path="/t/MSP-PODCAST_test3_0002.wav", label="neu", attributes={}, error=None,
...           start=None),
...         S(path="/t/MSP-PODCAST_test3_0001.wav", label="ang", attributes={}, error=None,
...           start=None)]
>>> result = S(classes=PRIMARY, attributes=(), predictions=rows)
>>> print(challenge_csv(result), end="")
FileName,EmoClass
MSP-PODCAST_test3_0001.wav,A
MSP-PODCAST_test3_0002.wav,N
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ser.corpus.kinds.msp_podcast import EMOTIONS, PRIMARY
from ser.corpus.records import ATTRIBUTES
from ser.errors import ConfigError
from ser.predict.config import Prediction, PredictResult

TASKS = ("1", "2")
#: The organisers' column of each attribute, in their file's order.
COLUMNS = {"arousal": "EmoAct", "valence": "EmoVal", "dominance": "EmoDom"}
SCALE = (1.0, 7.0)  # the challenge's attribute scale: predictions are clipped to it
LETTERS = {code: letter for letter, code in EMOTIONS.items() if code in PRIMARY}


def task_of(result: PredictResult, asked: str | None = None) -> str:
    """The task the run's predictions answer: "1" (its classes are the challenge's 8),
    "2" (it predicts arousal, valence and dominance); `asked` picks one of a run that
    answers both. `ConfigError` for a run that answers neither or not the one asked."""
    offers = []
    if result.classes:
        offers.append("1")
    if set(ATTRIBUTES) <= set(result.attributes):
        offers.append("2")
    if asked is not None and asked not in TASKS:
        raise ConfigError(f"--challenge-task {asked!r}: choose 1 (categories) or 2 (attributes)")
    if not offers:
        raise ConfigError(
            "--challenge-csv: this run predicts neither the emotion category (task 1) nor "
            f"all of arousal, valence and dominance (task 2); it predicts {_what(result)}"
        )
    if asked is None and len(offers) > 1:
        raise ConfigError(
            "--challenge-csv: this run answers both tasks; give --challenge-task 1 or 2"
        )
    task = asked or offers[0]
    if task not in offers:
        raise ConfigError(f"--challenge-task {task}: this run predicts {_what(result)}")
    if task == "1" and set(result.classes) != set(PRIMARY):
        raise ConfigError(
            "--challenge-csv task 1 is the 8 primary emotions of MSP-Podcast "
            f"({' '.join(PRIMARY)}); this run's classes are {' '.join(result.classes)} "
            "(train it with --classes 8 on an MSP-Podcast store)"
        )
    return task


def _what(result: PredictResult) -> str:
    parts = [f"classes {' '.join(result.classes)}"] if result.classes else []
    parts += list(result.attributes)
    return ", ".join(parts) or "nothing"


def challenge_csv(result: PredictResult, task: str | None = None) -> str:
    """The submission file's text; `ConfigError` when an input failed or was segmented
    (the challenge scores one prediction per file, every file)."""
    task = task_of(result, task)
    failed = [Path(p.path).name for p in result.predictions if p.error is not None]
    if failed:
        raise ConfigError(
            f"--challenge-csv: {len(failed)} file(s) were not predicted ({', '.join(failed[:3])}"
            f"{', ...' if len(failed) > 3 else ''}); no submission file written"
        )
    if any(p.start is not None for p in result.predictions):
        raise ConfigError("--challenge-csv scores whole files: leave --segment out")
    names = [Path(p.path).name for p in result.predictions]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"--challenge-csv: file names given twice: {', '.join(twice[:3])}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if task == "1":
        writer.writerow(["FileName", "EmoClass"])
        rows = [[Path(p.path).name, LETTERS[str(p.label)]] for p in result.predictions]
    else:
        writer.writerow(["FileName", *COLUMNS.values()])
        rows = [[Path(p.path).name, *_values(p)] for p in result.predictions]
    writer.writerows(sorted(rows))
    return buffer.getvalue()


def _values(p: Prediction) -> list[str]:
    low, high = SCALE
    return [f"{min(max(p.attributes[a], low), high):.4f}" for a in COLUMNS]
