"""The extractor registry: the built-in kinds, what is derived from it, and the proof that
a new kind is one file and one registry line: a kind defined here, registered with one
line, is extracted into a store by the library call `ser extract` makes, resolved by
train's feature resolution and offered by `ser extract --help`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ser.cli import main
from ser.errors import ConfigError
from ser.extract.base import Extractor, FeatureSetSpec, base_attrs, check_audio
from ser.extract.logmel import LogmelExtractor
from ser.extract.options import KindOptions, option
from ser.extract.registry import (
    KINDS,
    Kind,
    build_extractor,
    default_kinds,
    flags,
    kind_options,
    parse_names,
    register,
)
from ser.extract.speech import SpeechExtractor, SpeechOptions


def test_registry_holds_the_seven_kinds() -> None:
    assert list(KINDS) == ["speech", "text", "hubert", "mpnet", "bert", "is13", "logmel"]
    for name in KINDS:
        # hubert is speech's class, mpnet and bert text's: each records its own kind
        given = {"model": "m"} if name in ("speech", "text") else {}
        assert build_extractor(name, **given).kind == name
    assert KINDS["hubert"].extractor is KINDS["speech"].extractor is SpeechExtractor
    assert KINDS["mpnet"].extractor is KINDS["bert"].extractor is KINDS["text"].extractor


def test_ser_extract_runs_the_papers_kinds_by_default() -> None:
    from ser.extract.run import ExtractConfig

    assert default_kinds() == ("hubert", "mpnet", "bert", "is13", "logmel")
    assert ExtractConfig().features == default_kinds()
    for name in ("speech", "text"):  # no default model: one must be named
        with pytest.raises(ConfigError, match=f"--{name}-model"):
            build_extractor(name)
        with pytest.raises(ConfigError, match=f"--{name}-model"):
            ExtractConfig(features=(name,))


def test_text_encoder_defaults_are_each_papers_model() -> None:
    assert build_extractor("mpnet").options.model == "microsoft/mpnet-base"
    assert build_extractor("bert").options.model == "bert-base-uncased"
    assert build_extractor("bert", model="m").options.model == "m"


def test_build_extractor_maps_options_onto_the_dataclass() -> None:
    extractor = build_extractor("hubert", model="some/model", layers="6,9,12", normalize=None)
    assert isinstance(extractor, SpeechExtractor)
    assert extractor.options == SpeechOptions(model="some/model", layers="6,9,12")
    logmel = build_extractor("logmel", n_mels=40, fmax=None)
    assert isinstance(logmel, LogmelExtractor) and logmel.specs()[0].name == "logmel40"


def test_build_extractor_rejects_unknown_kinds_and_options() -> None:
    with pytest.raises(ConfigError, match=r"unknown extractor 'wav2vec'.*hubert, mpnet"):
        build_extractor("wav2vec")
    with pytest.raises(ConfigError, match=r"no option.*n_bands.*options are n_mels"):
        build_extractor("logmel", n_bands=40)
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        build_extractor("hubert", precision="fp8")


def test_the_flags_are_the_options_that_ask_for_one() -> None:
    encoders = ("speech", "text", "hubert", "mpnet", "bert")
    found = {p: f.targets for p, f in flags().items()}
    own = {
        f"{kind}_{field}": ((kind, field),) for kind in encoders for field in ("model", "layers")
    }
    shared = ("layers", "pool", "pooled_only")
    stored = {"store_dtype": tuple((k, "store_dtype") for k in (*encoders, "logmel"))}
    assert found == {
        **own,
        **{field: tuple((k, field) for k in encoders) for field in shared},
        **stored,
    }
    assert "[default: bert-base-uncased]" in flags()["bert_model"].help
    assert "[default" not in flags()["speech_model"].help  # required
    assert flags()["pooled_only"].type is bool and flags()["layers"].shared


def test_a_kinds_own_layers_flag_wins_over_the_shared_one() -> None:
    values = {"layers": "all", "bert_layers": "last", "pool": "mean", "pooled_only": False}
    assert kind_options(values, ("hubert", "bert", "logmel")) == {
        "hubert": {"layers": "all", "pool": "mean"},
        "bert": {"layers": "last", "pool": "mean"},
    }


def test_parse_names_refuses_ambiguous_and_colliding_names() -> None:
    assert parse_names(("x",), ("bert", "is13")) == {"bert": "x"}
    assert parse_names(("hubert=h", "bert=b"), ("hubert", "bert")) == {"bert": "b", "hubert": "h"}
    with pytest.raises(ConfigError, match=r"ambiguous .* --name hubert=x"):
        parse_names(("x",), ("hubert", "bert"))
    with pytest.raises(ConfigError, match="no model extractor"):
        parse_names(("x",), ("logmel",))
    with pytest.raises(ConfigError, match="mpnet is not one of"):
        parse_names(("mpnet=x",), ("bert",))
    with pytest.raises(ConfigError, match=r"logmel is not one of .* fixed names"):
        parse_names(("logmel=x",), ("bert", "logmel"))
    assert parse_names(("a=b",), ("bert",)) == {"bert": "a=b"}  # "=" may be in a name
    with pytest.raises(ConfigError, match="one name"):
        parse_names(("bert=x", "mpnet=x"), ("bert", "mpnet"))


# -- a new kind: utterance functionals of the zero-crossing rate ---------------------------


@dataclass(frozen=True)
class ZcrOptions(KindOptions):
    """frame_ms: the frames whose zero-crossing rates are summed up."""

    frame_ms: float = option(25.0, "frame in ms", "kind", metavar="MS")
    sample_rate: int = 16000


class ZcrExtractor(Extractor):
    """Feature set `zcr`: the mean and std of the frames' zero-crossing rates."""

    kind = "zcr"
    modality = "audio"

    def __init__(self, options: ZcrOptions) -> None:
        self.options = options
        self.frame = round(options.frame_ms * options.sample_rate / 1000)

    @property
    def sample_rate(self) -> int:
        return self.options.sample_rate

    def specs(self) -> list[FeatureSetSpec]:
        frames = {"frame_shift": None, "frame_ms": self.options.frame_ms}
        attrs = base_attrs(self.kind, "audio", "utterance", 2, "float32", **frames)
        return [FeatureSetSpec("zcr", {**attrs, "sample_rate": self.sample_rate})]

    def load(self, device: torch.device) -> None:
        pass

    def extract(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        check_audio(batch, self.frame, "one zero-crossing frame")
        out = []
        for wave in batch:
            frames = wave[: len(wave) // self.frame * self.frame].reshape(-1, self.frame)
            rates = (np.diff(np.signbit(frames), axis=1) != 0).mean(axis=1)  # [n_frames]
            out.append({"zcr": np.array([[rates.mean(), rates.std()]], np.float32)})
        return out


@pytest.fixture
def zcr() -> Iterator[Kind]:
    yield register(Kind("zcr", ZcrOptions, ZcrExtractor, "zero-crossing rate"))  # the one line
    del KINDS["zcr"]


@pytest.mark.slow
def test_a_new_kind_is_one_registry_line(
    zcr: Kind, synthetic_corpus: tuple[Path, Any], tmp_path: Path
) -> None:
    from ser.cache import FeatureStore
    from ser.extract.run import ExtractConfig, extract_features
    from ser.train.features import resolve_features

    root, _ = synthetic_corpus
    config = ExtractConfig(
        features=("zcr", "logmel"),
        options={"zcr": {"frame_ms": 20.0}},
        device="cpu",
        progress=False,
    )
    report = extract_features(root, tmp_path / "f.zarr", config)
    assert report.extracted == ("zcr", "logmel80") and report.exit_code == 0

    store = FeatureStore.open(tmp_path / "f.zarr")
    (found,) = resolve_features(store, ["zcr"])
    assert (found.name, found.extractor, found.level, found.dim) == ("zcr", "zcr", "utterance", 2)
    assert store.info("zcr").attrs["frame_ms"] == 20.0

    shown = CliRunner().invoke(main, ["extract", "--help"], terminal_width=200).output
    assert "hubert,mpnet,bert,is13,logmel,zcr" in shown
    assert "--zcr-frame-ms MS" in shown
    assert "zero-crossing rate frame in ms. [default: 25.0]" in shown
    args = [
        "extract",
        str(root),
        "--store",
        str(tmp_path / "f.zarr"),
        "--quiet",
        "--features",
        "zcr",
        "--zcr-frame-ms",
        "20",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and "nothing to do: zcr already complete" in result.output


def test_registration_is_undone_after_the_test() -> None:
    assert "zcr" not in KINDS


def test_the_registry_and_each_kinds_module_import_without_torch() -> None:
    # `ser extract` reads the registry to parse its flags and answers a finished request
    # without torch: a kind's module imports torch, transformers or openSMILE only in the
    # code that loads or runs its extractor.
    probe = """
import importlib, sys
from ser.extract.registry import KINDS
for kind in KINDS.values():
    importlib.import_module(kind.extractor.__module__)
    importlib.import_module(kind.options.__module__)
print(sorted({kind.extractor.__module__ for kind in KINDS.values()}))
print([name for name in ("torch", "transformers", "opensmile") if name in sys.modules])
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules = [
        "ser.extract.is13",
        "ser.extract.logmel",
        "ser.extract.speech",
        "ser.extract.text_encoder",
    ]
    assert done.stdout.splitlines() == [str(modules), "[]"]


@pytest.mark.slow
def test_doctests() -> None:
    import doctest

    import ser.extract.is13
    import ser.extract.layer_sets
    import ser.extract.logmel
    import ser.extract.registry
    import ser.extract.speech
    import ser.extract.text_encoder

    for module in (
        ser.extract.registry,
        ser.extract.layer_sets,
        ser.extract.speech,
        ser.extract.text_encoder,
        ser.extract.is13,
        ser.extract.logmel,
    ):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
