"""Session-wide fixtures: one small synthetic corpus and one set of tiny models.

Building them once per test session keeps the suite fast; tests that need to change a
corpus copy it first (`corpus_copy`).
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

# Two cores here and in CI: one intra-op thread per test process keeps timings stable
# and outputs reproducible. In the environment too, where `ser.runtime.threads` reads it (train
# and extract set their own count) and before torch loads OpenMP.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

from tests import old_runs

torch.set_num_threads(1)

T = TypeVar("T")


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], T]) -> T:
    """`build(folder)` in a new folder, once for the whole run: under pytest-xdist by the
    first test process to ask, the others waiting on a lock and then reading its value back
    (pickled); without xdist, simply built. For the session fixtures below, which every
    test only reads: each process building its own equal copy was a second build of each."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build(factory.mktemp(name))
    run = factory.getbasetemp().parent  # this run's folder, each process's inside it
    folder, value = run / name, run / f"{name}.pickle"
    with open(run / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # given back when the file closes
        if value.exists():
            return pickle.loads(value.read_bytes())
        shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
        folder.mkdir()
        built = build(folder)
        value.write_bytes(pickle.dumps(built))
        return built


@pytest.hookimpl(trylast=True)  # after pytest-xdist has made this run's folder
def pytest_sessionstart(session: pytest.Session) -> None:
    old_runs.start_removing(session.config)


@pytest.hookimpl(tryfirst=True)  # before pytest's own clean-up of the same folders
def pytest_sessionfinish(session: pytest.Session) -> None:
    old_runs.wait_for_removal(session.config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files that hold slow tests run first (in their order; the rest after, in
    theirs): with one process per core and a file to a process, a long file begun last
    would keep one core busy while the other waits."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory: pytest.TempPathFactory):
    """A small synthetic IEMOCAP root and its ground truth: (root, SynthTruth)."""
    from ser.synth.corpus import SynthConfig, write_corpus

    def build(folder: Path) -> tuple[Path, Any]:
        root = folder / "IEMOCAP_full_release"
        return root, write_corpus(root, SynthConfig(dialogs_per_session=1, seed=7))

    return built_once(tmp_path_factory, "corpus", build)


@pytest.fixture(scope="session")
def short_corpus(tmp_path_factory: pytest.TempPathFactory):
    """`synthetic_corpus` at 50 utterances, 10 a session: (root, SynthTruth). Every session
    and 4-class label is there for a test that extracts it more than once or transcribes
    it, in a third of the 170 utterances' time."""
    from ser.synth.corpus import SynthConfig, write_corpus

    config = SynthConfig(dialogs_per_session=1, utterances_per_dialog=(10, 10), seed=7)

    def build(folder: Path) -> tuple[Path, Any]:
        root = folder / "IEMOCAP_full_release"
        return root, write_corpus(root, config)

    return built_once(tmp_path_factory, "short_corpus", build)


@pytest.fixture
def corpus_copy(synthetic_corpus, tmp_path: Path) -> Path:
    """A private copy of the synthetic corpus that a test may damage."""
    root, _ = synthetic_corpus
    dest = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(root, dest)
    return dest


@pytest.fixture(scope="session")
def labelled_stores(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`labelled_stores(sets, **options)`: a `labelled_store` made once per config; read only."""
    from tests.stores import labelled_store

    made: dict[str, Path] = {}

    def get(sets: dict[str, Any], **options: Any) -> Path:
        bound = inspect.signature(labelled_store).bind(None, sets, **options)
        bound.apply_defaults()  # a default given or left out is the same store
        key = repr(list(bound.arguments.items())[1:])
        if key not in made:
            name = "labelled-" + hashlib.sha256(key.encode()).hexdigest()[:16]
            made[key] = built_once(tmp_path_factory, name, partial(build, sets, options))
        return made[key]

    def build(sets: dict[str, Any], options: dict[str, Any], folder: Path) -> Path:
        labelled_store(folder / "features.zarr", sets, **options)
        return folder / "features.zarr"

    return get


@pytest.fixture
def new_family() -> Iterator[Callable[..., Any]]:
    """`new_family(**changes)`: tests/families.py's family (`replace(FAMILY, **changes)`)
    registered with its one line, as a family of ser's own is in ser/models/__init__.py,
    and the `Family`; gone from the registry when the test ends."""
    from ser.models import FAMILIES, register
    from tests.families import FAMILY

    added: list[str] = []

    def add(**changes: Any) -> Any:
        family = replace(FAMILY, **changes)
        register(family)
        added.append(family.name)
        return family

    yield add
    for name in added:
        FAMILIES.pop(name, None)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory):
    """Tiny random HuBERT / MPNet / BERT / Whisper saved with save_pretrained (no downloads)."""
    from ser.synth.text import VOCABULARY
    from ser.synth.tiny import build_tiny_models

    def build(folder: Path) -> Any:
        return build_tiny_models(folder, VOCABULARY, seed=0)

    return built_once(tmp_path_factory, "models", build)


# -- `ser predict` (tests/predict, tests/commands/test_predict_cli.py) ------------------
# A store extracted from the synthetic corpus with the tiny models and a trained
# multimodal run with checkpoints.


@dataclass(frozen=True)
class TrainedRun:
    store: Path
    run_dir: Path
    wavs: list[str]  # test-side wavs of the run's fold, in the checkpoint's row order
    transcripts: list[str]
    preds: list[int]  # the run's test predictions for them


@pytest.fixture(scope="session")
def trained_run(synthetic_corpus, tiny_models, tmp_path_factory) -> TrainedRun:
    root, _ = synthetic_corpus

    def build(tmp: Path) -> tuple[Any, ...]:  # fields, not the class: this file's
        return astuple(_train_run(root, tiny_models, tmp))

    return TrainedRun(*built_once(tmp_path_factory, "predict", build))


def _train_run(root: Path, tiny_models: Any, tmp: Path) -> TrainedRun:
    import numpy as np

    from ser.cache import FeatureStore
    from ser.models import ModelConfig
    from ser.train.checkpoint import load_checkpoint
    from ser.train.recipe import TrainConfig, train

    store = tmp / "f.zarr"
    extract_tiny(root, store, tiny_models, {})
    model = ModelConfig(fusion="mit", d_model=16, heads=2, queries=4)
    train(
        TrainConfig(
            store=str(store), features=("hubert", "bert"), model=model, classes="4",
            protocol="session5", epochs=2, batch_size=8, seeds=1, device="cpu",
            out=str(tmp / "runs"), name="mit", final=True,
        )
    )  # fmt: skip
    run_dir = tmp / "runs" / "mit"
    ckpt = load_checkpoint(run_dir, "seed0_session5")
    rows = np.asarray(ckpt.meta["test"]["rows"])
    manifest = FeatureStore.open(store).manifest
    wavs = [str(root / w) for w in np.asarray(manifest.column("wav")).astype(str)[rows]]
    texts = np.asarray(manifest.column("transcript")).astype(str)[rows]
    return TrainedRun(store, run_dir, list(wavs), list(texts), list(ckpt.meta["test"]["pred"]))


@pytest.fixture(scope="session")
def finetuned_run(synthetic_corpus, tiny_models, tmp_path_factory) -> Path:
    """A run whose tiny HuBERT's top layer trained with LoRA on its cached layer 1
    (`--finetune tiny-hubert.L1:top=1,lora=4`), one seed and fold, two epochs: what `ser
    report` and `ser export` say of and do with a fine-tuned run (tests/report, tests/export)."""
    root, _ = synthetic_corpus
    return built_once(
        tmp_path_factory, "finetuned", lambda tmp: _finetune_run(root, tiny_models, tmp)
    )


def _finetune_run(root: Path, tiny_models: Any, tmp: Path) -> Path:
    from rich.console import Console

    from ser.extract.run import ExtractConfig, extract_features
    from ser.models import ModelConfig
    from ser.train.recipe import TrainConfig, train

    store = tmp / "f.zarr"
    config = ExtractConfig(
        features=("hubert",),
        options={"hubert": {"model": str(tiny_models.hubert), "layers": "all"}},
        classes="4",
        device="cpu",
        precision="fp32",
        progress=False,
    )
    extract_features(root, store, config, console=Console(quiet=True))
    train(
        TrainConfig(
            store=str(store), features=("tiny-hubert.L1",), model=ModelConfig(fusion="none"),
            classes="4", protocol="session5",
            epochs=2, batch_size=8, seeds=1, device="cpu", out=str(tmp / "runs"), name="ft",
            finetune=("tiny-hubert.L1:top=1,lora=4",),
        )
    )  # fmt: skip
    return tmp / "runs" / "ft"


def _acted(factory: pytest.TempPathFactory, name: str, folder: str, write: Callable) -> Any:
    """A tiny synthetic acted corpus (5 actors, 1 sentence) in `folder`, and its truth."""
    from ser.synth.acted import ActedConfig

    config = ActedConfig(actors=5, sentences=1)
    return built_once(factory, name, lambda tmp: write(tmp / folder, config))


@pytest.fixture(scope="session")
def crema_d_corpus(tmp_path_factory: pytest.TempPathFactory):
    """A tiny synthetic CREMA-D root (5 actors, 1 sentence) and its truth."""
    from ser.synth.acted import write_crema_d

    return _acted(tmp_path_factory, "crema", "CREMA-D", write_crema_d)


@pytest.fixture(scope="session")
def crema_d_manifest_store(crema_d_corpus, tmp_path_factory: pytest.TempPathFactory):
    """`crema_d_corpus` listed in a manifest CSV and `ser extract --features logmel` of it:
    (store, the command's click Result); read only."""
    from click.testing import CliRunner

    from ser.cli import main
    from ser.synth.acted import write_manifest

    tmp = tmp_path_factory.mktemp("crema-manifest")
    listed, store = write_manifest(crema_d_corpus, tmp / "corpus.csv"), tmp / "m.zarr"
    args = ["extract", str(listed), "--store", str(store), "--features", "logmel", "--quiet"]
    return store, CliRunner().invoke(main, args)


@pytest.fixture(scope="session")
def ravdess_corpus(tmp_path_factory: pytest.TempPathFactory):
    """A tiny synthetic RAVDESS root (5 actors, 1 statement) and its truth."""
    from ser.synth.acted import write_ravdess

    return _acted(tmp_path_factory, "ravdess", "RAVDESS", write_ravdess)


@pytest.fixture(scope="session")
def msp_podcast_corpus(tmp_path_factory: pytest.TempPathFactory):
    """A tiny synthetic MSP-Podcast root (5 speakers and Unknown, every class once)."""
    from ser.synth.talk import TalkConfig, write_msp_podcast

    return built_once(
        tmp_path_factory,
        "msp",
        lambda tmp: write_msp_podcast(tmp / "MSP-Podcast", TalkConfig(speakers=5)),
    )


@pytest.fixture(scope="session")
def meld_corpus(tmp_path_factory: pytest.TempPathFactory):
    """A tiny synthetic MELD root (4 characters; 6 train, 2 dev, 2 test dialogs)."""
    from ser.synth.talk import TalkConfig, write_meld

    return built_once(
        tmp_path_factory, "meld", lambda tmp: write_meld(tmp / "MELD", TalkConfig(speakers=4))
    )


@pytest.fixture(scope="session")
def meld_release(tmp_path_factory: pytest.TempPathFactory):
    """A tiny synthetic MELD as released: .mp4 clips (48 kHz stereo AAC) in its folders
    (3 characters; 3 train, 1 dev, 1 test dialogs)."""
    from ser.synth.talk import TalkConfig, write_meld

    config = TalkConfig(speakers=3, dialogs=1)
    return built_once(
        tmp_path_factory,
        "meld-release",
        lambda tmp: write_meld(tmp / "MELD.Raw", config, clips=True),
    )


@pytest.fixture(scope="session")
def mosei_score_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tests.mosei.mosei_store`'s CMU-MOSEI store (logmel and the score sets), read only."""
    from tests.mosei import mosei_store

    return built_once(tmp_path_factory, "mosei", mosei_store)


@pytest.fixture(scope="session")
def audio_run(trained_run, tmp_path_factory) -> Path:
    """MSMSER on the predict store's tiny HuBERT set alone (`ser export --onnx` exports
    its whole pipeline; `ser predict --stream` needs no transcript), one encoder and one
    decoder layer: the ONNX exporter's time follows the graph's operators."""
    from ser.models import ModelConfig
    from ser.train.recipe import TrainConfig, train

    def build(out: Path) -> Path:
        train(
            TrainConfig(
                store=str(trained_run.store), features=("hubert",),
                model=ModelConfig(
                    fusion="mit", d_model=16, heads=2, queries=4, layers=1, decoder_layers=1
                ),
                classes="4", protocol="session5", epochs=2, batch_size=8, seeds=1,
                device="cpu", out=str(out), name="audio",
            )
        )  # fmt: skip
        return out / "audio"

    return built_once(tmp_path_factory, "audio-run", build)


@pytest.fixture(scope="session")
def layered_store(synthetic_corpus, tiny_models, tmp_path_factory) -> Path:
    """Every layer of the tiny HuBERT and the tiny BERT's last, extracted in fp32 from the
    synthetic corpus: what runs with fine-tuned inputs train on."""
    root, _ = synthetic_corpus

    def build(folder: Path) -> Path:
        extract_tiny(root, folder / "f.zarr", tiny_models, {"layers": "all"})
        return folder / "f.zarr"

    return built_once(tmp_path_factory, "finetune-store", build)


def extract_tiny(root: Path, store: Path, tiny_models, hubert: dict) -> None:  # type: ignore[no-untyped-def]
    """The tiny HuBERT (with `hubert`'s further options) and BERT over the corpus at
    `root` into `store`, in fp32 on the CPU."""
    from rich.console import Console

    from ser.extract.run import ExtractConfig, extract_features

    options = {
        "hubert": {"model": str(tiny_models.hubert), **hubert},
        "bert": {"model": str(tiny_models.bert)},
    }
    config = ExtractConfig(
        features=("hubert", "bert"), options=options, classes="4", device="cpu",
        precision="fp32", progress=False,
    )  # fmt: skip
    extract_features(root, store, config, console=Console(quiet=True))


def _train_text(store: Path, out: Path, name: str, context: bool) -> Path:
    from ser.models import ModelConfig
    from ser.train.recipe import TrainConfig, train

    model = ModelConfig(fusion="none", context=True, d_model=8, heads=2) if context else None
    train(
        TrainConfig(
            store=str(store), features=("bert",), model=model or ModelConfig(fusion="none"),
            classes="4", protocol="session5", epochs=1, batch_size=8, seeds=1, device="cpu",
            out=str(out), name=name,
        )
    )  # fmt: skip
    return out / name


@pytest.fixture(scope="session")
def text_run(trained_run, tmp_path_factory) -> Path:
    """An utterance-level run on the BERT set alone."""
    return built_once(
        tmp_path_factory, "text", lambda out: _train_text(trained_run.store, out, "text", False)
    )


@pytest.fixture(scope="session")
def text_dialog_run(trained_run, tmp_path_factory) -> Path:
    """A dialog-context run (unit "dialog") on the BERT set alone."""
    return built_once(
        tmp_path_factory, "ctx", lambda out: _train_text(trained_run.store, out, "ctx", True)
    )
