"""`ser predict`'s table, CSV and JSON, written through the run's heads, pinned byte for
byte (tests/commands/pinned/predict_*) on results of fixed values: an emotion run, an
attribute run, both in segments with conversations, MELD's sentiment beside the
category and MOSEI's score and six emotions without it; failed inputs among them."""

from __future__ import annotations

import inspect
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from ser.commands import predict as command
from ser.commands.predict import as_json, table, write_csv
from ser.heads.predicted import Part
from ser.heads.targets import Targets
from ser.predict import ensemble, scoring, stream, vtt
from ser.predict.config import Output, Prediction, PredictResult, outputs_of

PINNED = Path(__file__).parent / "pinned"
CLASSES = ("ang", "hap", "neu", "sad")
P, Q = [0.1, 0.6, 0.2, 0.1], [0.4, 0.1, 0.3, 0.2]
A = [3.14159, 2.5, 4.0001]


def _prediction(
    heads: tuple[Output, ...], path: str, rows: dict[str, list[float]], **kw: object
) -> Prediction:
    """An input's prediction of `rows` (a head's name -> its values; none: it failed)."""
    p = Prediction(path, **kw)  # type: ignore[arg-type]
    for o in heads:
        if o.head.name in rows:
            p.heads[o.head.name] = Part(o.names, np.asarray(rows[o.head.name], np.float32))
    return p


Made = list[tuple[str, dict[str, list[float]], dict[str, object]]]


def _result(target: str, classes: tuple[str, ...], made: Made, **kw: object) -> PredictResult:
    heads = outputs_of(Targets.parse(target).heads, classes)
    predictions = [_prediction(heads, path, rows, **extra) for path, rows, extra in made]
    return PredictResult(classes, heads=heads, predictions=predictions, **kw)  # type: ignore[arg-type]


def _cases() -> dict[str, PredictResult]:
    return {
        "emotion": _result("emotion", CLASSES, [
            ("/d/a.wav", {"emotion": P}, dict(transcript="hello", transcript_source="asr",
                                              notes=["resampled"])),
            ("/d/b.wav", {}, dict(error="cannot read", transcript="x", transcript_source="given")),
            ("/d/c.wav", {"emotion": Q}, dict(transcript="hi there", transcript_source="given")),
        ], checkpoints=("s0f0", "final"), notes=("a note",)),
        "attributes": _result("attributes", (), [
            ("/d/a.wav", {"attributes": A}, dict(notes=["n1", "n2"])),
            ("/d/b.wav", {}, dict(error="too long")),
        ], checkpoints=("s0f0",)),
        "both-segments": _result("emotion+attributes", CLASSES, [
            ("/d/a.wav", {"emotion": P, "attributes": A},
             dict(start=0.0, end=2.5, dialog="d1", order=0)),
            ("/d/a.wav", {"emotion": Q, "attributes": [1.0, 7.0, 3.333333]},
             dict(start=2.5, end=5.0, dialog="d1", order=1)),
            ("/d/b.wav", {}, dict(error="audio stops decoding", start=0.0, end=1.25,
                                  dialog="d2", order=0)),
        ], checkpoints=("s0f0",)),
        "emotion-sentiment": _result("emotion+sentiment", CLASSES, [
            ("/d/a.wav", {"emotion": P, "sentiment": [0.2, 0.5, 0.3]}, {}),
            ("/d/b.wav", {}, dict(error="bad")),
        ], checkpoints=("s0f0",)),
        "mosei": _result("sentiment-score+emotions", (), [
            ("/d/a.wav", {"sentiment-score": [1.23456],
                          "emotions": [0.9, 0.1, 0.6, 0.2, 0.05, 0.7]}, {}),
            ("/d/b.wav", {"sentiment-score": [-0.5], "emotions": [0.1] * 6}, {}),
            ("/d/c.wav", {}, dict(error="bad")),
        ], checkpoints=("s0f0",)),
        "attributes-failed-only": _result("attributes", (), [
            ("/d/b.wav", {}, dict(error="x")),
        ], checkpoints=("s0f0",)),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_cases()))
def test_the_outputs_are_the_pinned_ones(case: str, tmp_path: Path) -> None:
    result = _cases()[case]
    shown = io.StringIO()
    Console(file=shown, width=200, color_system=None).print(table(result))
    assert shown.getvalue() == (PINNED / f"predict_{case}.table").read_text()
    write_csv(tmp_path / "p.csv", result)
    assert (tmp_path / "p.csv").read_text() == (PINNED / f"predict_{case}.csv").read_text()
    assert json.dumps(as_json(result)) + "\n" == (PINNED / f"predict_{case}.json").read_text()


#: One head's part read by name, or a condition on the run having one (what the writers
#: did before the heads said their parts).
WHICH_HEAD = re.compile(
    r"\.(label|probabilities|attributes|categorical)\b|\b(EmotionHead|AttributeHead)\b"
    r"|\b(if|elif|and|or|not)\b[^\n]*\bclasses\b"
)


def test_the_writers_iterate_over_the_heads_never_asking_which() -> None:
    writers: list[Callable[..., Any]] = [
        command.as_json, command._json, command.table, command.write_csv, command._cells,
        stream.line, vtt.vtt_text, vtt.cue_text, scoring._score, ensemble.outputs,
        ensemble.ensemble,
    ]  # fmt: skip
    found = [
        f"{w.__qualname__}: {line.strip()}"
        for w in writers
        for line in inspect.getsource(w).splitlines()
        if WHICH_HEAD.search(line)
    ]
    assert found == []
    for line in (  # what they did before
        "    if result.categorical:",
        '        probs += [p.attributes.get(a, "") for a in result.attributes]',
        "    if model.ckpts[0].classes:",
    ):
        assert WHICH_HEAD.search(line), line


def test_a_run_of_failed_inputs_alone_says_each_one(trained_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """No input predicted: every head's part is empty, the exit code 1, no traceback."""
    from click.testing import CliRunner

    from ser.cli import main

    missing = str(tmp_path / "missing.wav")
    args = ["predict", "--run", str(trained_run.run_dir), "--device", "cpu", missing, "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("{"))
    (made,) = json.loads(line)["predictions"]
    assert (
        made["label"] is None and made["probabilities"] == {} and "does not exist" in made["error"]
    )


def test_the_stream_lines_are_the_pinned_ones() -> None:
    """`--stream`'s JSON lines (`ser.predict.stream.line`) of a predicted and a failed
    segment: the category's, the attributes', MELD's sentiment; MOSEI's heads alone."""
    from types import SimpleNamespace

    values = [0.1, 0.6, 0.2, 0.1, 0.3, 0.7]
    made = []
    for target, classes in [("emotion+attributes+sentiment", CLASSES), ("attributes", ()),
                            ("sentiment-score+emotions", ())]:  # fmt: skip
        targets = Targets.parse(target)
        model = SimpleNamespace(ckpts=[SimpleNamespace(classes=classes, targets=targets)])
        model.features = {}
        ok = Prediction("a.wav", start=1.23456, end=2.5)
        for head, names in zip(targets.heads, targets.names(classes), strict=True):
            ok.heads[head.name] = Part(names, np.asarray(values[: len(names)], np.float32))
        bad = Prediction("a.wav", start=0.0, end=1.0, error="bad")
        made.append(json.dumps([stream.line(ok, model), stream.line(bad, model)]))  # type: ignore[arg-type]
    assert "\n".join(made) + "\n" == (PINNED / "predict_stream.jsonl").read_text()
