"""Every head a run can have (the category, the attributes and every registered head,
plugins' included: tests/registries.py) reads its gold from the first registered corpus
kind's small synthetic corpus that carries it (`CorpusKind.synthetic`), and on it: its
loss is finite with gradients, its scores and its part of predictions.csv read back from
a fold entry and a table as they were written, and a tiny run with it trains and its
record and predictions read. A head registered anywhere is in these tests' parameters;
none names one, nor the corpus it reads."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ser.cache import FeatureStore, Manifest
from ser.cli import main
from ser.corpus.labels import LabelSet
from ser.corpus.registry import KINDS, read_corpus
from ser.errors import ConfigError, SerError
from ser.heads.base import GoldSource, Head, Side, TablePart
from ser.heads.recorded import entry_heads, run_heads, table_heads
from ser.heads.targets import Targets
from ser.runs import record as run_record
from ser.runs.fold_entry import FoldEntry
from ser.runs.predictions import PredictionTable, predictions_csv, read_predictions
from ser.synth.toolkit import TOOLKIT
from tests.registries import every_head, registered_corpus_kinds

#: The feature set every store gets to train on: a few numbers an utterance.
NOISE = "noise"


@dataclass(frozen=True)
class Found:
    """A head's gold: the store it was read from (its corpus kind's small synthetic
    corpus), the run's targets with that head alone, their class set, the gold."""

    kind: str
    store: Path
    targets: Targets
    label_set: LabelSet
    gold: np.ndarray  # [N, G]

    @property
    def head(self) -> Head:
        (head,) = self.targets.heads
        return head


def synthetic_store(kind: str, folder: Path) -> Path:
    """The kind's small synthetic corpus as a store holding `NOISE`."""
    registered = KINDS[kind]
    assert registered.synthetic is not None
    written = registered.synthetic.write(folder / kind, 0, TOOLKIT, registered.synthetic.small)
    _, reading = read_corpus(written.corpus, kind)
    manifest = Manifest.from_utterances(reading.utterances, reading.root)
    store = FeatureStore.create(folder / f"{kind}.zarr", manifest, registered.attrs(reading))
    rng = np.random.default_rng(0)
    attrs = {"extractor": NOISE, "modality": "audio", "level": "utterance", "dim": 4,
             "dtype": "float32"}  # fmt: skip
    store.begin_feature_set(NOISE, attrs)
    rows = {i: rng.normal(size=(1, 4)) for i in range(len(manifest))}
    store.shard_writer(NOISE).write(0, rows, {})
    store.consolidate(NOISE, 1)
    return store.path


def gold_of(targets: Targets, store: Path) -> tuple[LabelSet, np.ndarray] | None:
    """The class set and the head's gold the store gives (None: no item has any)."""
    opened = FeatureStore.open(store)
    kind = opened.corpus.kind
    label_set = kind.label_set(kind.classes)
    try:
        (gold,) = targets.gold(GoldSource(opened, label_set)).values()
    except SerError:  # the kind's corpus lacks what the head reads
        return None
    return label_set, gold


class GoldFinder:
    """`finder(head)`: where the head's gold is; the synthetic stores, under `folder`, made
    once each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.stores: dict[str, Path] = {}

    def __call__(self, name: str) -> Found:
        try:
            targets = Targets.parse(name)
        except ConfigError:  # a head of the category's classes, refused alone by a run
            targets = dataclasses.replace(Targets.parse(f"emotion+{name}"), emotion=False)
        for kind in registered_corpus_kinds():
            if KINDS[kind].synthetic is None:
                continue
            if kind not in self.stores:
                self.stores[kind] = synthetic_store(kind, self.folder)
            got = gold_of(targets, self.stores[kind])
            if got is not None:
                return Found(kind, self.stores[kind], targets, *got)
        raise AssertionError(f"no registered corpus kind's synthetic corpus has {name} gold")


@pytest.fixture(scope="module")
def find(tmp_path_factory: pytest.TempPathFactory) -> GoldFinder:
    return GoldFinder(tmp_path_factory.mktemp("every-head"))


def outputs(found: Found, seed: int = 0) -> torch.Tensor:
    """Random outputs of the head's width, one row an utterance of the store."""
    width = found.head.width(len(found.label_set.classes))
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(len(found.gold), width, generator=generator)


def side(found: Found) -> Side:
    """A side of the store's utterances with gold, as the head predicts and holds them."""
    head, rows = found.head, np.isfinite(found.gold).any(axis=1)
    out = outputs(found)[torch.from_numpy(rows)]
    pred = head.bounded(head.predict(out).numpy(), None)
    codes = found.gold[rows, 0] if head.category else np.zeros(int(rows.sum()))
    decided = (np.nan_to_num(codes, nan=0).astype(np.int64), out.argmax(-1).numpy())
    return Side(pred, found.gold[rows], head.names(found.label_set.classes), decided)


@pytest.mark.parametrize("name", every_head())
def test_every_heads_loss_is_finite_and_has_gradients(name: str, find: GoldFinder) -> None:
    found = find(name)
    out = outputs(found).requires_grad_()
    loss = found.head.loss(out, torch.tensor(found.gold, dtype=torch.float32))
    assert loss.ndim == 0 and torch.isfinite(loss), f"{name}: loss {loss}"
    loss.backward()
    assert out.grad is not None and torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0


@pytest.mark.parametrize("name", every_head())
def test_every_heads_scores_read_back_from_a_fold_entry(name: str, find: GoldFinder) -> None:
    found = find(name)
    given = side(found)
    evaluated = found.targets.evaluate([given.pred], [given.gold], given.names, given.decided)
    entry = FoldEntry(
        0,
        "f1",
        metrics=evaluated["metrics"],
        attributes=evaluated["attribute_metrics"],
        heads=evaluated["scores"],
    )
    read = FoldEntry.from_json(json.loads(json.dumps(entry.to_json())))
    (head,) = entry_heads(read)
    assert head.name == name
    metrics = head.recorded(read)
    assert metrics is not None
    assert head.flat(metrics) == found.head.flat(found.head.evaluate(given))
    score = found.head.score(found.head.evaluate(given))
    assert isinstance(score, float)


@pytest.mark.parametrize("name", every_head())
def test_every_heads_part_of_the_predictions_reads_back(
    name: str, find: GoldFinder, tmp_path: Path
) -> None:
    found = find(name)
    given = side(found)
    n = len(given.pred)
    part = found.head.table_part(given)
    classes = found.targets.classes(found.label_set)
    ids = [f"u{i}" for i in range(n)]
    table = PredictionTable.of(classes, 0, "f1", ids, ["s"] * n, range(n),
                               **TablePart.joined([part], n))  # fmt: skip
    (tmp_path / "predictions.csv").write_text(predictions_csv(table), encoding="utf-8")
    read = read_predictions(tmp_path / "predictions.csv")
    assert [h.name for h in table_heads(read)] == [name]
    assert (read.classes, read.attributes, read.further) == (
        table.classes, table.attributes, table.further,
    )  # fmt: skip
    assert (read.cells == table.cells).all()
    np.testing.assert_array_equal(read.pred, table.pred)
    np.testing.assert_allclose(read.probs, table.probs, atol=1e-6)
    np.testing.assert_allclose(read.attr_pred, table.attr_pred, rtol=1e-5)


def train(store: Path, target: str, out: Path) -> tuple[int, str]:
    """`ser train` of the smallest model on `store`'s `NOISE`: one seed, one epoch."""
    args = ["train", "--store", str(store), "--features", NOISE, "--fusion", "none",
            "--epochs", "1", "--batch-size", "8", "--seeds", "1", "--device", "cpu",
            "--target", target, "--out", str(out), "--name", "run"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


@pytest.mark.parametrize("name", every_head())
def test_a_tiny_run_with_every_head_trains_and_its_record_reads(
    name: str, find: GoldFinder, tmp_path: Path
) -> None:
    """The head alone, and beside the category: each trains, or is refused in one line
    (a head that needs the category)."""
    found = find(name)
    beside = () if found.head.category else (f"emotion+{name}",)
    for i, target in enumerate((name, *beside)):
        code, shown = train(found.store, target, tmp_path / str(i))
        if code == 2 and target == name and beside:
            last = shown.strip().splitlines()[-1]
            assert "Traceback" not in shown and last.startswith("error: "), shown
            continue
        assert code == 0, shown
        run = tmp_path / str(i) / "run"
        record = run_record.read(run / run_record.RECORD)
        assert name in [h.name for h in run_heads(record)]
        again = run_record.read(run_record.write(tmp_path / f"again{i}.json", record))
        assert again.to_json() == record.to_json()
        table = read_predictions(run / "predictions.csv")
        assert name in [h.name for h in table_heads(table)] and len(table) > 0
