"""The probe preset: its rows are the layers a store holds (`ser.sweep.probe`), checked
before anything trains; its report (`probe_report`) and layer curves (`plots`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ser.errors import ConfigError
from ser.runs.record import RunRecord
from ser.sweep.probe import SETTINGS, layer_of
from ser.sweep.probe_report import best_layer, peak, probe_md
from ser.sweep.results import CellResult
from ser.sweep.spec import load_spec
from tests.stores import add_labelled_set, labelled_store
from tests.sweep.layered import add_layer, layer_attrs, layered_store

LAYERS = [
    ("hubert-base-ls960", 0, "mean", 0.2),
    ("hubert-base-ls960", 1, "mean", 2.0),
    ("hubert-base-ls960", 2, "mean", 0.5),
    ("hubert-base-ls960", 2, None, 0.5),  # frames of L2 too: its pooled set is read
    ("tiny-b", 3, None, 1.0),  # frames only
    ("tiny-b", 1, None, 1.0),
    ("tiny-b", 5, "meanstd", 1.0),  # only mean+std pooled
]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("probe") / "features.zarr"
    store = layered_store(path, LAYERS)
    add_labelled_set(store, "is13", ("is13", "audio", "utterance", 7, "float32"))  # no layer
    text = layer_attrs("tiny-text", 4, "mean", 6, modality="text", extractor="bert")
    add_layer(store, ("tiny-text", 4, "mean", 1.0), name="tiny-text.mean", attrs=text)
    asr = layer_attrs("tiny-text", 4, "mean", 6, modality="text", text_source="asr",
                      transcripts="asr-w")  # fmt: skip
    add_layer(store, ("tiny-text", 4, "mean", 1.0), name="tiny-text.mean@asr-w", attrs=asr)
    return path


def rows(spec: Any) -> list[tuple[str, str, Any]]:
    return [(c.label, c.options["features"], c.row.meta["layer"]) for c in spec.cells]


def test_rows_are_every_stored_layer_of_each_encoder_pooled_first(store_path: Path) -> None:
    spec = load_spec("probe", store=str(store_path))
    assert rows(spec) == [
        ("hubert-base-ls960 L0", "hubert-base-ls960.L0.mean", 0),
        ("hubert-base-ls960 L1", "hubert-base-ls960.L1.mean", 1),
        ("hubert-base-ls960 L2", "hubert-base-ls960.L2.mean", 2),
        ("hubert-base-ls960 weighted sum", "hubert-base-ls960.L*.mean", None),
        ("tiny-b L1", "tiny-b.L1", 1),
        ("tiny-b L3", "tiny-b.L3", 3),
        ("tiny-b L5", "tiny-b.L5.meanstd", 5),  # one pooled layer: no weighted sum
        ("tiny-text L4", "tiny-text.mean", 4),  # a text model's last layer; not its ASR set
    ]
    cell = spec.cells[0]
    assert {k: cell.options[k] for k in SETTINGS} == dict(SETTINGS)
    assert spec.cells[3].options["batch_size"] == 128  # the weighted sum's own
    # Matched by the recorded model: EmoBox's IEMOCAP row of HuBERT base, SUPERB's WA.
    assert dict(cell.row.published) == {"ua": 63.87, "wa": 63.10, "f1": 63.45, "superb_wa": 64.9}
    assert dict(spec.cells[4].row.published) == {}
    emobox = {"matched_by": "hubert-base-ls960", "emobox_model": "HuBERT base",
              "emobox_corpus": "iemocap"}  # fmt: skip
    assert spec.cells[3].row.meta == {"encoder": "hubert-base-ls960", "layer": None,
                                      "pool": "mean", "layers": [0, 1, 2], **emobox}  # fmt: skip
    assert spec.cells[4].row.meta["emobox_model"] is None
    assert {c.row.store for c in spec.cells} == {str(store_path.resolve())}
    only = load_spec(
        "probe", store=str(store_path), params={"encoders": "tiny-b"}, fixed={"seeds": "1"}
    )
    assert [c.label for c in only.cells][:3] == ["tiny-b L1", "tiny-b L3", "tiny-b L5"]
    assert only.cells[0].options["seeds"] == 1
    single = load_spec("probe", store=str(store_path), params={"weighted-sum": "no"})
    assert [c for c in single.cells if c.row.meta["layer"] is None] == []
    assert len(single.cells) == len(spec.cells) - 1


def test_an_unfinished_pooled_set_gives_way_to_finished_frames(tmp_path: Path) -> None:
    store = layered_store(tmp_path / "s.zarr", [("enc", 1, None, 1.0)])
    store.begin_feature_set("enc.L1.mean", layer_attrs("enc", 1, "mean", 6))  # never finished
    assert rows(load_spec("probe", store=str(tmp_path / "s.zarr"))) == [("enc L1", "enc.L1", 1)]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"encoders": "wavlm-base,tiny-b"}, "has no layer sets of wavlm-base; it holds layers"),
        ({"encoders": "tiny-b,tiny-b"}, "a stem twice or empty"),
        ({"weighted-sum": "maybe"}, "--set weighted-sum=maybe: yes or no"),
        ({"audio": "hubert"}, "--set audio=hubert: takes encoders=STEM,STEM, weighted-sum=no only"),
    ],
)
def test_bad_encoders_name_what_the_store_holds(
    store_path: Path, params: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load_spec("probe", store=str(store_path), params=params)
    assert message in str(e.value)
    if "holds" in message:
        assert "hubert-base-ls960 (layers 0-2, pooled)" in str(e.value)
        assert "tiny-b (layers 1, 3, 5, frames and pooled)" in str(e.value)


def test_a_store_without_layer_sets_or_no_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.zarr"
    layered_store(path, [])
    with pytest.raises(ConfigError, match="holds no layer sets to probe"):
        load_spec("probe", store=str(path))
    with pytest.raises(ConfigError, match="give --store"):
        load_spec("probe")
    with pytest.raises(ConfigError, match="takes audio=SET, text=SET only"):
        load_spec("msmser-table2", params={"encoders": "x"})  # the papers' presets: audio, text


def test_layer_sets_are_found_by_their_recorded_layer_and_name() -> None:
    assert layer_of("a.L3", {"layer": 3}) == ("a", 3, None)
    assert layer_of("a.L3", {"layer": 4}) is None  # the name and the record disagree
    assert layer_of("a.L3.meanstd", {"layer": 3, "pool": "meanstd"}) == ("a", 3, "meanstd")
    assert layer_of("a.L3.mean@asr-w", {"layer": 3, "pool": "mean", "text_source": "asr"}) is None
    below_top = {"layer": 3, "modality": "text", "n_layers": 12}  # a text layer below the last
    assert layer_of("bert.L3", below_top) == ("bert", 3, None)
    assert layer_of("hubert", {"layer": 12, "modality": "audio"}) is None


def result(stem: str, layer: int | None, ua: float | None, run: dict[str, Any] | None = None,
           published: dict[str, float] | None = None, column: str = "IEMOCAP",
           emobox: dict[str, Any] | None = None, protocol: str = "loso") -> CellResult:  # fmt: skip
    """A probe cell with three seeds' UA (WA: UA - 1, F1: UA - 2) on the store of report
    column `column`, or not run when `ua` is None."""
    meta = {"encoder": stem, "layer": layer, "pool": "mean", **(emobox or {})}
    batch = 512
    if layer is None:
        meta["layers"], batch = [0, 1, 2], 128
    row = {"label": f"{stem} L{layer}", "meta": meta,
           "published": published or {}, "key": f"{stem}{layer}{column}",
           "store": {"path": column, "column": column}, "own_store": True,
           "config": {"d_model": 32, "dropout": 0.0, "epochs": 10, "batch_size": batch,
                      "lr": 0.003, "seeds": [0, 1, 2], "protocol": protocol,
                      "classes": "4"}}  # fmt: skip
    if ua is None:
        return CellResult(row, None)
    summary = {"ua": ua, "wa": ua - 1, "f1": ua - 2, "ua_std": 0.5, "wa_std": 0.5,
               "f1_std": 0.5, "n": 3, "seeds": 3}  # fmt: skip
    folds = [{"seed": s, "fold": "fold1", "metrics": {"ua": ua, "wa": ua - 1}} for s in range(3)]
    record = {"name": stem, "config": {}, "protocol": protocol, "classes": ["neu", "hap"],
              "folds": folds, "summary": summary, "complete": True, **(run or {})}  # fmt: skip
    return CellResult(row, RunRecord.from_json(record))


HUBERT = {"matched_by": "hubert-base-ls960", "emobox_model": "HuBERT base",
          "emobox_corpus": "iemocap"}  # fmt: skip
TINY = {"matched_by": "/models/tiny-b", "emobox_model": None, "emobox_corpus": "iemocap"}


def test_the_report_has_every_layer_the_best_marked_and_the_papers_beside(store_path: Path) -> None:
    published = {"ua": 63.87, "wa": 63.10, "f1": 63.45, "superb_wa": 64.9}
    weights = {"folds": [{"seed": 0, "fold": "fold1", "metrics": {"ua": 1, "wa": 1},
                          "layer_weights": {"x": [0.1, 0.6, 0.3]}}] * 2,
               "layers": {"x": {"sets": ["a", "b", "c"], "layers": [0, 1, 2]}}}  # fmt: skip
    hubert = {"published": published, "emobox": HUBERT}
    results = [
        result("hubert-base-ls960", 0, 50.0, **hubert),
        result("hubert-base-ls960", 1, 61.0, **hubert),
        result("hubert-base-ls960", 2, 55.0, **hubert),
        result("hubert-base-ls960", None, 62.0, weights, **hubert),
        result("tiny-b", 1, None, emobox=TINY),
    ]
    text = probe_md({}, results, ["## probe"])
    assert "### IEMOCAP" in text
    assert "Ours: loso (speaker-independent); validation: -; 2 classes (neu, hap)." in text
    assert "EmoBox: its iemocap numbers (EmoBox (Ma et al., Interspeech 2024), Table 4 " in text
    assert "on EmoBox's own folds and class set of it; ours on loso: another split." in text
    assert "| hubert-base-ls960 | 1 (best) | .mean set | 61.00 ± 0.50 | 60.00 ± 0.50 | 3 |" in text
    assert "| hubert-base-ls960 | 0 | .mean set | 50.00 ± 0.50 |" in text
    summed = "| weighted sum (weights peak at 1: 0.600 ± 0.000, uniform 0.333) | layers 0-2, "
    assert summed + ".mean sets | 62.00 ± 0.50 |" in text
    assert "| tiny-b | 1 | .mean set | not run | not run | - |" in text
    summary = text.split("#### IEMOCAP per encoder")[1]
    assert "SUPERB-style WA (paper; beside our weighted sum)" in summary
    assert "EmoBox UA (paper; beside our last layer) | EmoBox WA (paper; beside our " in summary
    best = "| hubert-base-ls960 | 1 | 61.00 ± 0.50 | 60.00 ± 0.50 | 59.00 ± 0.50 | 2 | 55.00 "
    assert best in summary
    published = "| HuBERT base | 64.90 | 63.87 | 63.10 | 63.45 |"
    assert "| 1 | 62.00 ± 0.50 | 61.00 ± 0.50 " + published in summary
    none = "| not in this sweep | - | - | none (EmoBox has no /models/tiny-b) | - | - | - | - |"
    assert "| tiny-b | - | - | - | - | 1 | not run " + none in summary
    assert "hidden 32, dropout 0.0), 10 epochs, batch 512 (weighted sum: 128), lr 0.003" in text
    assert best_layer(results[4:]) is None and peak(None) is None and peak(results[0].run) is None


def test_a_section_per_corpus_each_with_its_own_emobox_numbers() -> None:
    cremad, none = {**HUBERT, "emobox_corpus": "cremad"}, {**HUBERT, "emobox_corpus": None}
    # fmt: off
    results = [
        result("hubert-base-ls960", 0, 50.0, published={"ua": 63.87}, emobox=HUBERT),
        result("hubert-base-ls960", 0, 70.0, published={"ua": 71.13}, column="CREMA-D",
               emobox=cremad, protocol="emobox:1"),
        result("hubert-base-ls960", 0, 40.0, column="Manifest", emobox=none),
    ]
    # fmt: on
    text = probe_md({}, results, ["## probe"])
    sections = {part.split("\n")[0]: part for part in text.split("\n### ")[1:]}
    assert list(sections) == ["IEMOCAP", "CREMA-D", "Manifest"]
    iemocap, crema_d, manifest = sections.values()
    assert "| 0 | 50.00 ± 0.50 | 49.00 ± 0.50 | 48.00 ± 0.50 |" in iemocap
    assert "| HuBERT base | - | 63.87 | - | - |" in iemocap
    assert "EmoBox: its cremad numbers" in crema_d and "ours on its folds too." in crema_d
    assert "| 0 | 70.00 ± 0.50 | 69.00 ± 0.50 | 68.00 ± 0.50 |" in crema_d
    assert "| HuBERT base | - | 71.13 | - | - |" in crema_d
    assert "Ours: emobox:1 (speaker-independent)" in crema_d
    assert "EmoBox: none (EmoBox benchmarks no such corpus)." in manifest
    assert "| HuBERT base | - | - | - | - |" in manifest


def test_the_estimate_counts_every_layer_a_weighted_sum_reads(
    store_path: Path, tmp_path: Path
) -> None:
    """Its FLOPs are a layer's, but it reads all of them each step: the read term."""
    from ser.sweep.cells import resolve_cells
    from ser.sweep.estimate import EFFECTIVE_FLOPS, EFFECTIVE_READ, estimate_sweep

    spec = load_spec("probe", store=str(store_path), params={"encoders": "hubert-base-ls960"})
    cells = resolve_cells(spec.cells, str(store_path), tmp_path)
    plans = estimate_sweep(cells, tmp_path).cells
    assert [p.cell.cell.row.meta["layer"] for p in plans] == [0, 1, 2, None]
    utterances, per_member = 60, 10 * 15  # labelled_store's; epochs x (3 seeds x 5 folds)
    for p, layers in zip(plans, (1, 1, 1, 3), strict=True):
        flops = 6.0 * p.estimate.parameters * utterances * per_member
        read = 6.0 * layers * utterances * per_member  # 6-d sets
        expected = flops / EFFECTIVE_FLOPS["cpu"] + read / EFFECTIVE_READ["cpu"]
        assert p.estimate.seconds == pytest.approx(expected)


def test_another_corpus_s_layers_get_emobox_s_numbers_of_it_not_iemocap_s(tmp_path: Path) -> None:
    from ser.corpus.registry import KINDS

    crema = labelled_store(tmp_path / "crema.zarr", {}, attrs=KINDS["crema-d"].attrs())
    for layer in LAYERS[:3]:
        add_layer(crema, layer)
    spec = load_spec("probe", store=str(tmp_path / "crema.zarr"))
    assert spec.cells[0].label == "hubert-base-ls960 L0"
    # EmoBox's CREMA-D row of HuBERT base; the SUPERB-style probes are IEMOCAP's alone.
    assert {dict(c.row.published)["ua"] for c in spec.cells} == {71.13}
    assert all("superb_wa" not in c.row.published for c in spec.cells)
    assert spec.cells[0].row.meta["emobox_corpus"] == "cremad"
