"""A run's heads: parsing `--target`, the output layout, the registry, and the losses
running under `vmap` with items lacking gold left out."""

from __future__ import annotations

import doctest
import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
import torch

import ser.heads.attributes
import ser.heads.targets
from ser.errors import ConfigError
from ser.heads import categorical
from ser.heads.attributes import AttributeHead
from ser.heads.emotion import EmotionHead
from ser.heads.registry import HEADS, register
from ser.heads.sentiment import SentimentHead
from ser.heads.targets import Targets
from tests.heads.conftest import Manifest

SER = Path(ser.heads.targets.__file__).parents[1]


def files(*packages: str) -> list[Path]:
    """The modules of ser's `packages`."""
    return [path for package in packages for path in sorted((SER / package).rglob("*.py"))]


def lines_matching(paths: Iterable[Path], matches: Callable[[str], bool]) -> list[str]:
    """``path:line: text`` of every line of `paths` that `matches`."""
    return [
        f"{path.relative_to(SER.parent)}:{n}: {line.strip()}"
        for path in paths
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if matches(line)
    ]


def test_parse_orders_the_heads_as_their_outputs() -> None:
    targets = Targets.parse("emotion+valence+sentiment")
    assert [h.name for h in targets.heads] == ["emotion", "attributes", "sentiment"]
    assert targets.name == "emotion+valence+sentiment"
    assert targets.widths(4) == (4, 1, 3) and targets.outputs(4) == 8
    parts = targets.split(torch.arange(16.0).view(2, 8), 4)
    assert [tuple(p.shape) for p in parts] == [(2, 4), (2, 1), (2, 3)]
    assert parts[2][0].tolist() == [5.0, 6.0, 7.0]


def test_the_old_targets_keep_their_layout_and_record() -> None:
    old = Targets.parse("emotion+attributes", "mse", 0.5)
    assert old == Targets(True, ("arousal", "valence", "dominance"), "mse", 0.5)
    record = {"emotion": True, "attributes": ["valence"], "loss": "ccc", "weight": 1.0}
    assert Targets.from_record(record) == Targets.parse("emotion+valence")
    heads = old.heads
    assert isinstance(heads[0], EmotionHead) and isinstance(heads[1], AttributeHead)
    assert heads[1].weight == 0.5 and Targets.parse("attributes", weight=0.5).heads[0].weight == 1


@pytest.mark.parametrize("target", ["emotion+nothing", "emotion+emotion", "attributes+valence"])
def test_unknown_or_repeated_heads_are_config_errors(target: str) -> None:
    with pytest.raises(ConfigError, match="--target"):
        Targets.parse(target)


def test_a_name_registered_twice_is_refused() -> None:
    class Other(SentimentHead):
        pass

    assert register(SentimentHead) is SentimentHead  # the same class again: a no-op
    with pytest.raises(ValueError, match="registered already"):
        register(Other)
    assert HEADS["sentiment"] is SentimentHead


def test_selection_is_one_heads_score_or_their_mean_on_one_scale() -> None:
    assert Targets.parse("emotion").selection([61.0]) == 61.0
    both = Targets.parse("emotion+attributes").selection([60.0, 0.4])
    assert both == pytest.approx(0.5)
    assert Targets.parse("emotion+sentiment").selection([60.0, -math.inf]) == -math.inf


def test_the_categorical_loss_leaves_out_items_without_gold_under_vmap() -> None:
    head = SentimentHead()
    out = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]], [[9.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    gold = torch.tensor([[[0.0], [float("nan")]], [[float("nan")], [2.0]]])  # [K, B, 1]
    losses = torch.func.vmap(head.loss)(out, gold)
    expected = [-math.log(math.exp(2) / (math.exp(2) + 2)), -math.log(math.e / (math.e + 2))]
    assert losses.tolist() == pytest.approx(expected, rel=1e-5)  # float32


def test_sentiment_scores_weighted_f1() -> None:
    head = SentimentHead()
    gold = np.array([[0.0], [0.0], [0.0], [2.0], [np.nan]])
    pred = np.eye(3)[[0, 0, 2, 2, 1]]
    metrics = head.metrics(pred, gold, head.names(()))
    assert metrics.n == 4 and metrics.wa == 75.0
    # negative: P 1, R 2/3 (F1 0.8, support 3); positive: P 1/2, R 1 (F1 2/3, support 1)
    assert head.score(metrics) == pytest.approx(100 * (0.8 * 3 + 2 / 3) / 4)
    assert head.flat(metrics)["sentiment_ua"] == pytest.approx(100 * (2 / 3 + 1) / 2)


@pytest.mark.parametrize("module", [ser.heads.targets, ser.heads.attributes, categorical])
def test_docstring_examples_run(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


def test_nothing_outside_the_heads_branches_on_which_heads_a_run_has() -> None:
    """The trainer, prediction, export and reports iterate over a run's heads: no
    condition on `targets.emotion` / `targets.attributes` outside ser/heads."""
    branch = re.compile(r"\b(if|elif|and|or|not)\b[^\n]*\btargets\.(emotion|attributes)\b")
    outside = [path for path in files("") if "heads" not in path.relative_to(SER).parts]
    found = lines_matching(
        outside, lambda line: bool(branch.search(line) or re.search(r"\btargets\.emotion\b", line))
    )
    assert found == []
    assert branch.search("    if plan.targets.emotion and data.targets is not None:")


#: What the trainer and `ser predict` once read of one head's predictions by name: the
#: category's and the attributes' fields beside every head's `outputs` / `golds`.
ONE_HEAD = re.compile(
    r"\.legacy\(|\bwith_attributes\b|\bgold_attributes\b|\bclip_attributes\b"
    r"|(?<!self)\.probs\b|\b(if|elif|and|or|not)\b[^\n]*\btargets\.(emotion|attributes)\b"
)


def test_the_trainer_and_predict_read_every_head_through_the_heads() -> None:
    """ser/train and ser/predict hold, clip and write each head's predictions through
    the heads (`Targets.bounded`, `Targets.output_of`), never a field of one head's."""
    assert lines_matching(files("train", "predict"), lambda line: bool(ONE_HEAD.search(line))) == []
    assert not hasattr(Targets, "legacy") and not hasattr(Targets, "with_attributes")
    for line in (  # what they did before the heads said it
        "        legacy = targets.legacy(outputs, golds)  # probs, gold attributes, attributes",
        "        test.probs[order],",
        "        test.gold_attributes[order],",
        "    return ckpt.targets.with_attributes(made, clip_attributes(attributes, scale))",
    ):
        assert ONE_HEAD.search(line), line
    assert not ONE_HEAD.search("            self.probs.append(self._score(window))")


def test_a_heads_part_is_found_by_its_name() -> None:
    targets = Targets.parse("emotion+attributes+sentiment")
    parts = (np.zeros((2, 4)), np.ones((2, 3)), np.full((2, 3), 2.0))
    assert targets.output_of("sentiment", parts) is parts[2]
    assert targets.output_of("attributes", parts) is parts[1]
    assert Targets.parse("attributes").output_of("emotion", parts[1:2]) is None
    category = targets.category
    assert category is not None and targets.output_of(category.name, parts) is parts[0]


#: Lines of `ser report` and `ser sweep` that would say which heads a run has: a fold
#: entry's or a table's attribute fields read outside the attribute head, the category
#: or the attributes named, a condition on a run having categories or attributes, a
#: summary's UA looked up to tell whether a run has the category.
WHICH_HEAD = re.compile(
    r"(?<!heads)\.(attributes|attr_gold|attr_pred)\b"
    r"|\b(EmotionHead|AttributeHead)\b"
    r"|\b(if|elif|and|or|not)\b[^\n]*\b(has_categories|run_attributes|table_attributes)\("
    r"|\.get\([\"']ua[\"']\)\s+is\b"
)
#: The run record's types, which hold every head's part of a record and predictions.csv.
RECORD_TYPES = ("record.py", "fold_entry.py", "predictions.py")


def test_reports_and_sweeps_iterate_over_the_heads_never_asking_which() -> None:
    """`ser report` (its table, --by, --paired, --plots) and `ser sweep`'s reports go
    through each head's own methods (`ser.heads.reported`): nothing in ser/report or
    ser/sweep reads one head's part of a record or names it."""
    branch = re.compile(r"\b(if|elif|and|or|not)\b[^\n]*\btargets\.(emotion|attributes)\b")
    scanned = [path for path in files("report", "sweep") if path.name not in RECORD_TYPES]
    found = lines_matching(
        scanned, lambda line: bool(WHICH_HEAD.search(line) or branch.search(line))
    )
    assert found == []
    for line in (  # what the reports did before the heads said it
        "    if MEAN not in summary and any(e.attributes for e in run.folds):",
        '    if table.attributes and by == "speaker":',
        '    return summary.get("ua") is not None or any(entry.metrics for entry in run.folds)',
        "        if has_categories(run):",
        "    scores = attribute_metrics(table.attr_gold, table.attr_pred, table.attributes)",
    ):
        assert WHICH_HEAD.search(line), line
    assert not WHICH_HEAD.search("from ser.heads.attributes import ATTRIBUTE_LOSSES")


def test_reports_read_the_heads_without_torch() -> None:
    """`ser report` knows every head (its columns, its pooled scores) without loading
    torch: only training and prediction load it."""
    code = (
        "import sys, ser.report.runs, ser.heads.targets; "
        "print('torch' in sys.modules, sorted(ser.heads.registry.HEADS))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(maxsplit=1) == [
        "False",
        "['emotions', 'multilabel', 'sentiment', 'sentiment-score']\n",
    ]


def test_a_head_no_utterance_has_gold_for_is_refused() -> None:
    """CMU-MOSEI's `sentiment` column holds scores, not MELD's classes: refused by name,
    before a model trains on nothing."""
    from types import SimpleNamespace

    from ser.corpus.labels import get_label_set
    from ser.heads.base import GoldSource

    labels = ["neu", "hap", "sad"]
    mosei = Manifest(label=labels, sentiment=[1.5, -0.3, 0.0])
    store = SimpleNamespace(manifest=mosei, path=Path("mosei.zarr"))
    source = GoldSource(store, get_label_set("4"))
    with pytest.raises(ConfigError, match=r"no utterance of mosei\.zarr has a sentiment value"):
        Targets.parse("emotion+sentiment").gold(source)
    meld = Manifest(label=labels, sentiment=["positive", "neutral", "negative"])
    found = Targets.parse("emotion+sentiment").gold(
        GoldSource(SimpleNamespace(manifest=meld), source.label_set)
    )
    assert found["sentiment"][:, 0].tolist() == [2.0, 1.0, 0.0]
    assert found["emotion"][:, 0].tolist() == [0.0, 1.0, 2.0]


def test_a_heads_option_flows_from_the_targets_into_the_head_and_the_records() -> None:
    """`--emotions-as` is a field of the targets, handed to the head that takes it (its
    constructor's parameter of that name), recorded where that head trains."""
    from ser.heads.emotion_intensities import EmotionIntensitiesHead

    targets = Targets.parse("sentiment-score+emotions", emotions_as="intensity")
    _, emotions = targets.heads
    assert isinstance(emotions, EmotionIntensitiesHead) and emotions.emotions_as == "intensity"
    assert targets.widths(3) == (1, 6)
    assert targets.record_keys() == {
        "target": "sentiment-score+emotions",
        "attribute_loss": None,  # off: every record names it
        "attribute_weight": None,
        "emotions_as": "intensity",
        "labels": None,
    }
    assert Targets.from_record(targets.to_record()) == targets
    assert "emotions_as" not in Targets.parse("emotions").to_record()  # the default: as before
    assert Targets.parse("emotions").record_keys()["emotions_as"] == "presence"
    assert "emotions_as" not in Targets.parse("emotion+sentiment").record_keys()
    with pytest.raises(ConfigError, match="--emotions-as trains the emotions head"):
        Targets.parse("emotion+sentiment-score", emotions_as="intensity")
    with pytest.raises(ConfigError, match="--emotions-as 'loud'"):
        Targets.parse("emotions", emotions_as="loud")
