"""`ser.train`: the run `ser train` makes, its refusals raised as ser's errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ser
from ser.api.arguments import python_spelled
from ser.errors import ConfigError, PathError, SerError
from ser.runs.record import RECORD
from ser.track.progress import Progress
from ser.train.option_table import train_options
from ser.train.record import read_record
from tests.api.conftest import FEATURES, TINY
from tests.refused import one_line
from tests.refused import ser as cli

FLAGS = {name: option.kind is bool for name, option in train_options().items()}


def test_the_run_is_the_one_ser_train_makes(
    demo_store: Path, demo_run: Path, tmp_path: Path
) -> None:
    record = read_record(demo_run / RECORD)
    assert demo_run.name == "api" and record.name == "api" and len(record.folds) == 1
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    args = ["train", "--store", demo_store, "--features", FEATURES, *flags]
    result = cli(*args, "--out", tmp_path, "--name", "api")
    assert result.exit_code == 0, result.output
    by_cli = read_record(tmp_path / "api" / RECORD)
    assert {**by_cli.config, "out": record.config["out"]} == record.config
    assert by_cli.protocol == record.protocol
    assert by_cli.folds[0].fold == record.folds[0].fold


def test_a_run_comes_back_with_its_record_and_summary(demo_store: Path, tmp_path: Path) -> None:
    heard: list[str] = []

    class Notes(Progress):
        def message(self, text: str) -> None:
            heard.append(text)

    store = ser.open_store(demo_store)  # an opened store stands for its path
    options = {**TINY, "epochs": "1"}  # the command line's text is taken too
    run = ser.train(Notes(), store=store, features=FEATURES, out=tmp_path, **options)
    assert run.folder == tmp_path / run.name and (run.folder / RECORD).is_file()
    assert run.name.startswith("logmel80+tiny-mpnet_mit_session5_c4")
    assert 0 <= run.summary["ua"] <= 100 and run.record.folds[0].best_epoch == 1
    assert any(line.startswith("session5: train") for line in heard)


def test_a_run_prints_its_name_folder_and_scores_not_its_record(demo_run: Path) -> None:
    run = ser.api.training.Run(demo_run, read_record(demo_run / RECORD))
    said = repr(run)
    assert said.startswith(f"Run('api', folder={str(demo_run)!r}, scores={{'wa': ")
    assert f"'f1': {round(run.summary['f1'], 2)}" in said
    assert "folds" not in said and len(said) < len(repr(run.record)) / 4


@pytest.mark.parametrize(
    ("options", "error", "said"),
    [
        ({"features": FEATURES, "bogus": 1}, ConfigError, "'bogus' is not a ser train option"),
        ({"features": FEATURES, "epochs": "many"}, ConfigError, "^epochs: 'many' is not an"),
        ({}, ConfigError, "^features is required"),
        ({"features": FEATURES, "fusion": "none"}, ConfigError, "takes exactly one feature set"),
        ({"features": "hubert"}, SerError, "hubert"),
    ],
)
def test_a_refusal_is_the_error_ser_train_says(demo_store, tmp_path, options, error, said) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=said) as raised:
        ser.train(store=demo_store, out=tmp_path, **options)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items() if k != "bogus"]
    if "bogus" not in options:  # click refuses an unknown option before ser does
        line = one_line(cli("train", "--store", demo_store, "--out", tmp_path, *flags))
        assert python_spelled(line, FLAGS) == f"error: {raised.value}"
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_refusal_from_python_names_the_arguments_not_the_flags(
    demo_store: Path, tmp_path: Path
) -> None:
    options = {"features": FEATURES, "test_store": demo_store, "views": "all"}
    with pytest.raises(ConfigError) as raised:
        ser.train(store=demo_store, out=tmp_path, **options)
    said = str(raised.value)
    assert "views" in said and "test_store" in said and "--" not in said
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    line = one_line(cli("train", "--store", demo_store, "--out", tmp_path, *flags))
    assert "--views" in line and python_spelled(line, FLAGS) == f"error: {said}"


def test_python_spells_a_flag_as_its_argument_and_keeps_a_quoted_command() -> None:
    said = "add --overwrite, or drop --no-rmm and --batch-size; `ser train --overwrite` runs it"
    assert python_spelled(said, FLAGS) == (
        "add overwrite=True, or drop rmm=False and batch_size; `ser train --overwrite` runs it"
    )
    assert python_spelled("--val=none or --epochs=3, not --seeds", FLAGS) == (
        "val='none' or epochs=3, not seeds"
    )
    assert python_spelled("with --features=a,b, or (--seeds=2)", FLAGS) == (
        "with features='a,b', or (seeds=2)"
    )


def test_an_output_folder_under_a_file_is_a_path_error(demo_store: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(PathError, match="a part of the path is a file"):
        ser.train(store=demo_store, features=FEATURES, out=tmp_path / "file", **TINY)


def test_ser_train_is_the_package_and_the_call() -> None:
    import ser.train.recipe

    assert ser.train.recipe.train is not ser.api.train and callable(ser.train)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"epochs": 2.7}, "epochs: 2.7 is not an integer"),
        ({"epochs": float("inf")}, "epochs: inf is not an integer"),
        ({"threads": 1.5}, "1.5"),
        ({"batch_size": "8.5"}, "batch_size: '8.5' is not an integer"),
    ],
)
def test_a_number_that_is_no_count_is_refused_never_truncated(
    demo_store: Path, tmp_path: Path, options: dict[str, object], said: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        ser.train(store=demo_store, features=FEATURES, out=tmp_path, **(TINY | options))
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_a_whole_float_is_a_count() -> None:
    from ser.train.option_table import train_config

    config = train_config({"store": "s.zarr", "features": "is13", "epochs": 2.0})
    assert config.epochs == 2 and isinstance(config.epochs, int)


def test_progress_that_is_no_progress_is_a_type_error(demo_store: Path) -> None:
    with pytest.raises(TypeError, match="progress must be"):
        ser.train("not a progress", store=demo_store, features=FEATURES)  # type: ignore[arg-type]


def test_progress_true_shows_what_ser_train_shows_on_stderr(
    demo_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ser.train(True, store=demo_store, features=FEATURES, out=tmp_path, **{**TINY, "epochs": 1})
    said = capsys.readouterr()
    assert said.out == ""  # stdout stays the caller's
    lines = said.err.splitlines()
    assert any(line.startswith("session5: train") for line in lines)  # the notes
    # no terminal: the plain epoch lines, then the fold's scores, as `ser train 2>log` logs
    assert any(line.startswith("seed 0 session5: epoch 1/1  loss ") for line in lines)
    assert any(re.match(r"seed 0 session5: UA \d+\.\d\d WA ", line) for line in lines)
    ser.train(False, store=demo_store, features=FEATURES, out=tmp_path, **{**TINY, "epochs": 1})
    assert capsys.readouterr().err == ""
