"""A folder laid out as `make demo` leaves it (scripts/demo.sh), at the suite's size: the
short synthetic corpus, its log-mel and tiny MPNet sets in ``demo/features.zarr``; and a
run trained on them through the Python API. Read only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import built_once

# The store's sets, as `--features` names them in the docs' examples (docs/python.md).
FEATURES = "logmel80+tiny-mpnet"
# A run that trains in seconds: tiny MSMSER, one seed, one held-out session, two epochs.
TINY = dict(
    fusion="mit", d_model=16, heads=2, queries=4, protocol="session5", classes="4", seeds=1,
    epochs=2, batch_size=8, device="cpu",
)  # fmt: skip


@pytest.fixture(scope="session")
def demo(short_corpus, tiny_models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding ``demo/`` (the corpus, the models and ``features.zarr``)."""
    from rich.console import Console

    from ser.extract.run import ExtractConfig, extract_features

    root, _ = short_corpus
    config = ExtractConfig(
        features=("logmel", "mpnet"),
        options={"mpnet": {"model": str(tiny_models.mpnet)}},
        classes="4",
        device="cpu",
        precision="fp32",
        progress=False,
    )

    def build(where: Path) -> Path:
        (where / "demo").mkdir()
        (where / "demo" / "IEMOCAP_full_release").symlink_to(root)
        (where / "demo" / "models").symlink_to(Path(tiny_models.mpnet).parent)
        store = where / "demo" / "features.zarr"
        extract_features(root, store, config, console=Console(quiet=True))
        return where

    return built_once(tmp_path_factory, "api", build)


@pytest.fixture(scope="session")
def demo_store(demo: Path) -> Path:
    return demo / "demo" / "features.zarr"


@pytest.fixture(scope="session")
def demo_run(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of `TINY` on the demo store's two sets, trained by `ser.train`."""
    import ser

    def build(out: Path) -> Path:
        return ser.train(store=demo_store, features=FEATURES, out=out, name="api", **TINY).folder

    return built_once(tmp_path_factory, "api-runs", build)
