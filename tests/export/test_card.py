"""The model card: Hugging Face metadata with the run's scores, the sections a user must
read, and commands that make the run's features and the run again."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.export.folder import CARD
from ser.export.write import ExportConfig, export_run
from ser.models.registry import config_record
from ser.runs.record import RECORD, read
from ser.train.option_table import train_config

SECTIONS = ("## Model", "## Training data", "## Evaluation", "## Results by class",
            "## Results by speaker group", "## Text", "## Intended use", "## Limits",
            "## How to use", "## Reproduce")  # fmt: skip


@pytest.fixture(scope="module")
def card(trained_run, tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("card") / "model"
    export_run(ExportConfig(str(trained_run.run_dir), str(out)))
    return (out / CARD).read_text()


def _commands(card: str) -> list[list[str]]:
    block = card.split("## Reproduce")[1].split("```bash\n")[1].split("```")[0]
    return [shlex.split(line) for line in block.strip().splitlines()]


def test_metadata_holds_the_run_s_scores_and_protocol(card, trained_run) -> None:
    meta = yaml.safe_load(card.split("---\n")[1])
    record = read(trained_run.run_dir / RECORD)
    assert meta["library_name"] == "ser" and meta["datasets"] == ["iemocap"]
    assert meta["language"] == ["en"] and "synthetic-data" in meta["tags"]
    result = meta["model-index"][0]["results"][0]
    assert result["dataset"]["split"] == "session5"
    scores = {m["type"]: m["value"] for m in result["metrics"]}
    assert scores["unweighted_accuracy"] == pytest.approx(record.summary["ua"], abs=1e-4)
    assert scores["weighted_accuracy"] == pytest.approx(record.summary["wa"], abs=1e-4)


def test_the_sections_say_what_a_user_must_know(card) -> None:
    assert all(heading in card for heading in SECTIONS)
    assert "| female |" in card and "| male |" in card  # the store records gender
    assert "Test text seen in training:" in card and "ASR: none" in card
    assert "- Test audio seen in training: 0 of " in card  # its store has audio prints
    assert "USC SAIL" in card and "acted" in card and "synthetic" in card
    assert "ser predict --model THIS_FOLDER" in card


def test_the_train_command_is_the_run_s(card, trained_run) -> None:
    train = next(words for words in _commands(card) if words[:2] == ["ser", "train"])
    command = main.get_command(None, "train")  # type: ignore[arg-type]
    params = command.make_context("train", train[2:]).params
    params.pop("as_json")
    config = train_config(params)
    record = read(trained_run.run_dir / RECORD).config
    assert config_record(config.model) == {k: record[k] for k in config_record(config.model)}
    assert (config.epochs, config.batch_size, config.lr) == (
        record["epochs"], record["batch_size"], record["lr"])  # fmt: skip
    assert config.protocol == record["protocol"] and config.final


@pytest.mark.slow
def test_an_extract_command_makes_the_set_s_fingerprint_again(
    card, trained_run, tiny_models, tmp_path
) -> None:
    hubert = next(words for words in _commands(card) if "--hubert-model" in words)
    store = tmp_path / "again.zarr"
    args = hubert[1:]
    args[args.index("--store") + 1] = str(store)
    # The card names folders by their names: a reader puts their own copies in place.
    assert args[1] == "IEMOCAP_full_release" and args[args.index("--hubert-model") + 1] == (
        "tiny-hubert"
    )
    args[1] = FeatureStore.open(trained_run.store).attrs["corpus_root"]
    args[args.index("--hubert-model") + 1] = str(tiny_models.hubert)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    made = FeatureStore.open(store).info("tiny-hubert.L2").attrs["fingerprint"]
    assert made == FeatureStore.open(trained_run.store).info("tiny-hubert.L2").attrs["fingerprint"]
    assert f"- tiny-hubert.L2: {made}" in card


def test_card_paths_are_the_store_s_by_their_names(card, trained_run) -> None:
    """The card names no path of this machine: the corpus root by its folder's name, and
    says what that name stands for."""
    root = FeatureStore.open(trained_run.store).attrs["corpus_root"]
    assert all(w[2] == Path(root).name for w in _commands(card) if w[1] == "extract")
    assert f"{Path(root).name}: your copy of the corpus" in card
    assert Path(root).is_dir() and root not in card
