"""Feature sets are found by their stored attrs (kind, model, layer, transcripts), never
by parsing their names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ser.errors import ConfigError, StoreError
from ser.train.features import resolve_features


@dataclass
class Info:
    name: str
    attrs: dict[str, Any]
    modality: str = "audio"
    level: str = "frame"
    dim: int = 4
    fingerprint: str = "f"
    complete: bool = True


class Store:
    path = Path("f.zarr")

    def __init__(self, sets: dict[str, dict[str, Any]]) -> None:
        self.sets = {name: Info(name, attrs) for name, attrs in sets.items()}

    def feature_sets(self) -> list[str]:
        return list(self.sets)

    def info(self, name: str) -> Info:
        return self.sets[name]


HUBERT = {"extractor": "hubert", "model": "facebook/hubert-base-ls960", "layer": 12}
MPNET = {"extractor": "mpnet", "model": "microsoft/mpnet-base"}
ASR = {**MPNET, "text_source": "asr", "transcripts": "asr-whisper-small"}


def _names(store: Store, *requests: str) -> list[str]:
    return [f.name for f in resolve_features(store, requests)]


def test_kind_model_and_exact_name_find_the_sets_stored_before() -> None:
    store = Store(
        {
            "hubert-base-ls960.L12": HUBERT,
            "mpnet-base": MPNET,
            "mpnet-base@asr-whisper-small": ASR,
            "is13": {"extractor": "is13"},
        }
    )
    assert _names(store, "hubert", "mpnet", "is13") == [
        "hubert-base-ls960.L12",
        "mpnet-base",
        "is13",
    ]
    assert _names(store, "hubert-base-ls960") == ["hubert-base-ls960.L12"]  # its one layer
    assert _names(store, "mpnet-base") == ["mpnet-base"]  # the gold set
    assert _names(store, "mpnet-base@asr-whisper-small") == ["mpnet-base@asr-whisper-small"]
    store.sets["hubert-base-ls960.L9"] = Info("hubert-base-ls960.L9", {**HUBERT, "layer": 9})
    with pytest.raises(ConfigError, match=r"matches 2 feature sets"):
        _names(store, "hubert-base-ls960")
    assert _names(store, "hubert-base-ls960.L9") == ["hubert-base-ls960.L9"]


def test_a_stem_is_what_the_kind_names_the_set_after_not_a_cut_of_the_name() -> None:
    renamed = {**HUBERT, "model": "/models/tiny-hubert", "layer": 2}
    store = Store({"ours.L2": renamed, "my.Lab": {"extractor": "bert", "model": "bert-base"}})
    assert _names(store, "ours") == ["ours.L2"]  # --name ours: the kind names it ours.L2
    with pytest.raises(StoreError, match="'my' is not in the store"):
        _names(store, "my")  # a bert set: ".Lab" is part of its name, not a layer


def _layers(model: dict[str, Any], stem: str, layers: range, **extra: Any) -> dict[str, Any]:
    """`stem`'s layer sets as extraction names them: `<stem>.L<n>`, a text model's last
    layer `<stem>` (no n_layers), then `.<pool>` and `@<transcripts>`."""
    top, sets = layers[-1], {}
    for n in layers:
        attrs = {**model, **extra, "layer": n, "n_layers": top}
        bare = attrs.get("modality") == "text" and n == top
        if bare:
            del attrs["n_layers"]
        name = stem + ("" if bare else f".L{n}") + (f".{extra['pool']}" if "pool" in extra else "")
        sets[name + (f"@{extra['transcripts']}" if "transcripts" in extra else "")] = attrs
    return sets


SPEECH = {"extractor": "hubert", "modality": "audio", "model": "/m/wavlm"}
TEXT = {"extractor": "bert", "modality": "text", "model": "/m/roberta"}


def _layered(store: Store, request: str) -> tuple[str, tuple[str, ...], tuple[int, ...]]:
    (feature,) = resolve_features(store, [request])
    return feature.name, feature.sets, feature.layers


def test_every_layer_of_one_model_is_one_input_named_canonically() -> None:
    store = Store({**_layers(SPEECH, "wavlm", range(4)), **_layers(TEXT, "roberta", range(3))})
    store.sets["is13"] = Info("is13", {"extractor": "is13"})
    sets = ("wavlm.L0", "wavlm.L1", "wavlm.L2", "wavlm.L3")
    assert _layered(store, "wavlm.L*") == ("wavlm.L0-3", sets, (0, 1, 2, 3))
    assert _layered(store, "wavlm.L1-2") == ("wavlm.L1-2", sets[1:3], (1, 2))
    assert _layered(store, "wavlm.L0-3") == _layered(store, "wavlm.L*")  # one name for both
    assert _layered(store, "wavlm.L3_0") == ("wavlm.L0_3", ("wavlm.L0", "wavlm.L3"), (0, 3))
    # a text model's last layer is its bare set
    assert _layered(store, "roberta.L*") == (
        "roberta.L0-2",
        ("roberta.L0", "roberta.L1", "roberta"),
        (0, 1, 2),
    )
    (both, plain) = resolve_features(store, ["wavlm.L*", "roberta"])
    assert "+" not in both.name and "," not in both.name and both.info().layers == 4
    assert (plain.name, plain.sets, plain.info().layers) == ("roberta", (), 1)


def test_pooled_layers_and_transcripts_are_asked_for_as_their_names_say() -> None:
    store = Store(
        {
            **_layers(SPEECH, "wavlm", range(3)),
            **_layers({**SPEECH, "level": "utterance"}, "wavlm", range(3), pool="mean"),
            **_layers({**SPEECH, "level": "utterance"}, "wavlm", range(3), pool="meanstd"),
            **_layers(TEXT, "roberta", range(3)),
            **_layers(TEXT, "roberta", range(3), text_source="asr", transcripts="asr-w"),
        }
    )
    assert _layered(store, "wavlm.L*")[1] == ("wavlm.L0", "wavlm.L1", "wavlm.L2")
    assert _layered(store, "wavlm.L*.mean") == (
        "wavlm.L0-2.mean",
        ("wavlm.L0.mean", "wavlm.L1.mean", "wavlm.L2.mean"),
        (0, 1, 2),
    )
    assert _layered(store, "wavlm.L1-2.meanstd")[1] == ("wavlm.L1.meanstd", "wavlm.L2.meanstd")
    assert _layered(store, "roberta.L*")[1] == ("roberta.L0", "roberta.L1", "roberta")  # gold
    assert _layered(store, "roberta.L*@asr-w") == (
        "roberta.L0-2@asr-w",
        ("roberta.L0@asr-w", "roberta.L1@asr-w", "roberta@asr-w"),
        (0, 1, 2),
    )


def test_every_layer_is_addressed_by_one_pattern_the_last_text_layer_too() -> None:
    store = Store(
        {
            **_layers(TEXT, "roberta", range(3)),
            **_layers({**TEXT, "level": "utterance"}, "roberta", range(3), pool="mean"),
            **_layers(TEXT, "roberta", range(3), text_source="asr", transcripts="asr-w"),
        }
    )
    # The last layer is stored as `roberta`, `roberta.mean`: `.L2` finds it as `.L1` does.
    assert _names(store, "roberta.L1", "roberta.L2.mean") == ["roberta.L1", "roberta.mean"]
    assert _names(store, "roberta.L2") == ["roberta"]  # gold text before the ASR's
    assert _names(store, "roberta.L2@asr-w") == ["roberta@asr-w"]
    with pytest.raises(StoreError, match=r"'roberta\.L3' is not in the store"):
        _names(store, "roberta.L3")


def test_a_layered_inputs_fingerprint_is_its_sets_in_layer_order() -> None:
    store = Store(_layers(SPEECH, "wavlm", range(3)))
    before = resolve_features(store, ["wavlm.L*"])[0].fingerprint
    store.sets["wavlm.L1"].fingerprint = "re-extracted"
    assert resolve_features(store, ["wavlm.L*"])[0].fingerprint != before
    assert resolve_features(store, ["wavlm.L0-2"])[0].fingerprint != before  # the same sets


def test_a_kind_or_stem_still_means_the_set_it_always_meant() -> None:
    # Extra layers and pooled views of a model must not make `--features hubert+mpnet`
    # ambiguous: a kind or stem means the frames (tokens) and a text model's last layer.
    store = Store(
        {
            **_layers(SPEECH, "wavlm", range(12, 13)),
            **_layers({**SPEECH, "level": "utterance"}, "wavlm", range(12, 13), pool="mean"),
            **_layers(TEXT, "roberta", range(3)),
            **_layers({**TEXT, "level": "utterance"}, "roberta", range(3), pool="meanstd"),
        }
    )
    assert _names(store, "hubert", "bert") == ["wavlm.L12", "roberta"]
    assert _names(store, "wavlm", "roberta") == ["wavlm.L12", "roberta"]
    assert _names(store, "wavlm.L12.mean", "roberta.L1") == ["wavlm.L12.mean", "roberta.L1"]
    store.sets.update(Store(_layers(SPEECH, "wavlm", range(9, 10))).sets)  # two: say which
    with pytest.raises(ConfigError, match="matches 2 feature sets"):
        _names(store, "hubert")


def test_layer_requests_that_cannot_be_met_say_what_the_store_holds() -> None:
    store = Store(_layers(SPEECH, "wavlm", range(3)))
    with pytest.raises(
        StoreError,
        match=r"layer\(s\) 3-5 of wavlm are not in the store f.zarr, "
        r"which holds layers 0-2 of it \(wavlm.L0, wavlm.L1, wavlm.L2\)",
    ):
        _layered(store, "wavlm.L1-5")
    with pytest.raises(
        StoreError,
        match=r"no layer sets of hubert-x.L\* in the store f.zarr "
        r"\(it holds: wavlm.L0",
    ):
        _layered(store, "hubert-x.L*")
    with pytest.raises(StoreError, match="ask by the model's name"):
        _layered(store, "hubert.L*")  # a kind names no model
    with pytest.raises(StoreError, match=r"no layer sets of wavlm.L\*.mean"):
        _layered(store, "wavlm.L*.mean")
    with pytest.raises(ConfigError, match=r"one layer set \(wavlm.L1\).*name that set itself"):
        _layered(store, "wavlm.L1-1")
    with pytest.raises(ConfigError, match="runs backwards"):
        _layered(store, "wavlm.L5-2")
    with pytest.raises(ConfigError, match="names one feature set twice"):
        resolve_features(store, ["wavlm.L*", "wavlm.L1"])
    store.sets["wavlm.L2"].complete = False
    with pytest.raises(StoreError, match=r"'wavlm.L2' in f.zarr is incomplete"):
        _layered(store, "wavlm.L*")


def test_two_models_under_one_name_are_refused_not_mixed() -> None:
    store = Store(_layers(SPEECH, "wavlm", range(3)))
    other = {**SPEECH, "weights_sha256": "ff"}
    store.sets["wavlm.L5"] = Info("wavlm.L5", {**other, "layer": 5, "n_layers": 12})
    with pytest.raises(
        ConfigError, match=r"2 different models .*weights_sha256: \(absent\) -> \"ff\""
    ):
        _layered(store, "wavlm.L*")
    store.sets["wavlm.L5"].attrs.update(weights_sha256=None, ser_version="0.2")  # an upgrade
    with pytest.raises(ConfigError, match=r"ser_version: \(absent\) -> \"0.2\".*--overwrite"):
        _layered(store, "wavlm.L*")


def test_one_layer_and_exact_names_resolve_as_before() -> None:
    store = Store({"hubert-base-ls960.L12": HUBERT, "hubert-base-ls960.L9": {**HUBERT, "layer": 9}})
    assert _names(store, "hubert-base-ls960.L12") == ["hubert-base-ls960.L12"]
    (feature,) = resolve_features(store, ["hubert-base-ls960.L12"])
    assert feature.sets == () and feature.stored == ("hubert-base-ls960.L12",)
    assert feature.info().layers == 1
    assert _layered(store, "hubert-base-ls960.L*")[2] == (9, 12)  # the kind's own names
    assert _layered(store, "hubert-base-ls960.L*")[0] == "hubert-base-ls960.L9_12"


@pytest.mark.parametrize("module", ["features", "option_table", "batches", "engine.ensemble"])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"ser.train.{module}"))
    assert result.attempted > 0 and result.failed == 0
