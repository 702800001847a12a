"""`ser predict` with runs trained on emotion attributes: each row's attributes on the
corpus's scale beside (or instead of) its class, in the table, JSON, CSV and WebVTT, and
averaged over an ensemble's checkpoints as its probabilities are."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.corpus.records import ATTRIBUTES
from ser.predict.run import PredictConfig, predict
from ser.train.checkpoint import checkpoint_dir, load_checkpoint


def _test_side(run: Path, store: Path, root: Path) -> tuple[list[str], list[str], list[str]]:
    """The run's test utterances: ids, wavs and transcripts, in its checkpoint's order."""
    rows = np.asarray(load_checkpoint(run, "seed0_session5").meta["test"]["rows"])
    manifest = FeatureStore.open(store).manifest
    column = {c: np.asarray(manifest.column(c)).astype(str)[rows] for c in ("utt_id", "wav")}
    texts = np.asarray(manifest.column("transcript")).astype(str)[rows]
    return list(column["utt_id"]), [str(root / w) for w in column["wav"]], list(texts)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["both_run", "attribute_run"])
def test_predicted_attributes_are_the_runs_own_test_predictions(
    which, request, trained_run, synthetic_corpus
) -> None:  # type: ignore[no-untyped-def]
    """Re-created features + the checkpoint give the attributes the run recorded for its
    test side (predictions.csv's pred_<attr>, on the corpus's scale)."""
    run = request.getfixturevalue(which)
    ids, wavs, texts = _test_side(run, trained_run.store, synthetic_corpus[0])
    keep = [i for i, t in enumerate(texts) if t.strip()]  # predict refuses empty text
    inputs = run.parent / "inputs.csv"
    with inputs.open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "transcript"]] + [[wavs[i], texts[i]] for i in keep])
    config = PredictConfig(str(run), (str(inputs),), device="cpu", checkpoint="seed0_session5")
    result = predict(config)
    assert result.attributes == ATTRIBUTES
    with (run / "predictions.csv").open() as handle:
        recorded = {r["utt_id"]: r for r in csv.DictReader(handle)}
    for i, p in zip(keep, result.predictions, strict=True):
        assert p.error is None
        want = {a: float(recorded[ids[i]][f"pred_{a}"]) for a in ATTRIBUTES}
        assert p.attributes == pytest.approx(want, abs=1e-4)
    if which == "attribute_run":
        assert result.classes == () and all(p.label is None for p in result.predictions)
    else:
        assert [p.label for p in result.predictions] == [recorded[ids[i]]["pred"] for i in keep]


def test_an_ensemble_averages_the_attributes(attribute_run: Path, trained_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = PredictConfig(str(attribute_run), (trained_run.wavs[0],), text="hello", device="cpu")
    fold = predict(base).predictions[0].attributes
    final = predict(PredictConfig(**{**base.__dict__, "checkpoint": "final"}))
    run = tmp_path / "both"
    shutil.copytree(attribute_run, run)  # "final" renamed: a second ensemble member
    for suffix in (".json", ".safetensors"):
        (checkpoint_dir(run) / f"final{suffix}").rename(checkpoint_dir(run) / f"seed9_x{suffix}")
    both = predict(PredictConfig(**{**base.__dict__, "run": str(run)}))
    assert both.checkpoints == ("seed0_session5", "seed9_x")
    mean = {a: (fold[a] + final.predictions[0].attributes[a]) / 2 for a in fold}
    assert both.predictions[0].attributes == pytest.approx(mean, abs=1e-5)
    assert fold != final.predictions[0].attributes  # two models, not one twice


def _cli(run: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["predict", "--run", str(run), "--device", "cpu", *args])
    return result.exit_code, result.output


def test_outputs_carry_the_attributes(both_run, attribute_run, trained_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wav = trained_run.wavs[0]
    code, out = _cli(both_run, wav, "--text", "hello", "--json", "--csv", str(tmp_path / "b.csv"))
    assert code == 0, out
    payload = json.loads(out[out.index("{") :])
    assert payload["attributes"] == list(ATTRIBUTES) and payload["classes"]
    row = payload["predictions"][0]
    assert set(row["attributes"]) == set(ATTRIBUTES) and row["label"] in payload["classes"]
    header = next(csv.reader((tmp_path / "b.csv").open()))
    assert header[:2] == ["path", "label"] and header[-6:-3] == list(ATTRIBUTES)
    code, out = _cli(attribute_run, wav, "--text", "hello", "--csv", str(tmp_path / "a.csv"))
    assert code == 0, out
    assert "class" not in out and "arousal" in out  # the table: no class column
    lines = list(csv.reader((tmp_path / "a.csv").open()))
    assert lines[0] == ["path", *ATTRIBUTES, "transcript", "transcript_source", "error"]
    assert 1 <= float(lines[1][1]) <= 5  # IEMOCAP's scale, not the z-scored one


def test_segments_and_their_cues_carry_the_attributes(attribute_run, trained_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    vtt = tmp_path / "a.vtt"
    args = ["--segment", "fixed:0.5", "--vtt", str(vtt), "--text", "hi", "--json"]
    code, out = _cli(attribute_run, trained_run.wavs[0], *args)
    assert code == 0, out
    rows = json.loads(out[out.index("{") :])["predictions"]
    assert len(rows) >= 2 and all(set(r["attributes"]) == set(ATTRIBUTES) for r in rows)
    cues = vtt.read_text().splitlines()
    first = cues[3].split()
    assert first[0::2] == ["A", "V", "D"] and float(first[1]) == pytest.approx(
        rows[0]["attributes"]["arousal"], abs=0.05
    )
    code, out = _cli(attribute_run, trained_run.wavs[0], *args, "--plot", str(tmp_path / "p.png"))
    assert code != 0 and "predicts no class" in out
    assert "checkpoint(s), features" not in out  # refused before any input was read


def test_a_categorical_run_prints_no_attributes(trained_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Categorical runs' outputs are as before: no attribute key, column or cue text."""
    code, out = _cli(trained_run.run_dir, trained_run.wavs[0], "--text", "hi", "--json")
    assert code == 0, out
    payload = json.loads(out[out.index("{") :])
    assert "attributes" not in payload and "attributes" not in payload["predictions"][0]
    _cli(trained_run.run_dir, trained_run.wavs[0], "--text", "hi", "--csv", str(tmp_path / "c"))
    header = next(csv.reader((tmp_path / "c").open()))
    assert header == ["path", "label", *payload["classes"], "transcript",
                      "transcript_source", "error"]  # fmt: skip
