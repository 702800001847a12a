"""Presets and SPEC files expand into typed cells; bad input is named, never trained."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser.corpus.registry import KINDS
from ser.errors import ConfigError
from ser.sweep.presets import PRESETS
from ser.sweep.spec import load_spec


def test_presets_expand_into_the_papers_rows() -> None:
    table2 = load_spec("msmser-table2")
    assert [c.label for c in table2.cells] == [
        "Text", "Audio", "w/o Encoder", "w/o SelfAtt", "w/o MIT", "Full",
    ]  # fmt: skip
    full = table2.cells[-1].options
    assert (full["features"], full["fusion"], full["protocol"]) == ("hubert+mpnet", "mit", "loso")
    assert table2.cells[0].options["features"] == "mpnet"
    fusion = load_spec("fusion-study")
    assert len(fusion.cells) == 24 + 2  # Table 2's cells and Table 1's two modalities
    assert {c.options["features"] for c in fusion.cells} == {"is13+bert", "is13", "bert"}
    everything = load_spec("all")
    assert len(everything.cells) == sum(len(p.rows) for p in PRESETS.values())


def test_set_fix_and_grid_are_typed_like_ser_train_options() -> None:
    spec = load_spec(
        "msmser-table3",
        params={"audio": "hubert-base-ls960.L12"},
        fixed={"epochs": "7", "d-model": "64", "rmm": "false"},
        grid={"lr": "1e-4,5e-4"},
    )
    assert len(spec.cells) == 12
    first = spec.cells[0]
    assert first.options["epochs"] == 7 and first.options["d_model"] == 64
    assert first.options["lr"] == pytest.approx(1e-4) and first.grid == {"lr": 1e-4}
    assert first.options["features"] == "hubert-base-ls960.L12+mpnet"
    assert first.options["rmm"] is False  # --fix wins over the row's own options
    assert first.label == "w/o RMM [lr=0.0001]"


def test_spec_file_with_preset_grid_and_cells(tmp_path: Path) -> None:
    spec_file = tmp_path / "ablation.toml"
    spec_file.write_text(
        'name = "mine"\n[params]\naudio = "is13"\ntext = "bert"\n'
        '[fixed]\nepochs = 3\nfeatures = "{audio}+{text}"\nfusion = "add"\nfusion-at = "logits"\n'
        '[grid]\nloss = ["single", "perspective"]\n'
        '[[cells]]\nlabel = "small"\nd-model = 16\n[[cells]]\nlabel = "big"\nd-model = 64\n'
    )
    spec = load_spec(str(spec_file))
    assert spec.name == "mine"
    assert [c.label for c in spec.cells] == [
        "small [loss=single]", "small [loss=perspective]", "big [loss=single]",
        "big [loss=perspective]",
    ]  # fmt: skip
    assert spec.cells[3].options["d_model"] == 64 and spec.cells[3].options["loss"] == "perspective"


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("msmser-tabel2", {}, "neither a preset"),
        ("msmser-table2", {"fixed": {"querys": "3"}}, "did you mean 'queries'"),
        ("msmser-table2", {"grid": {"fusion": "mit,nope"}}, "fusion = 'nope'"),
        ("msmser-table2", {"fixed": {"epochs": "many"}}, "epochs = 'many'"),
        ("msmser-table2", {"fixed": {"store": "x"}}, "'store' is not a ser train option"),
        ("msmser-table2", {"grid": {"lr": ""}}, "grid axis"),
        # --set fills {audio} and {text} only: an option there was silently ignored
        ("msmser-table2", {"params": {"epochs": "3"}}, "goes to --fix epochs=3"),
    ],
)
def test_bad_input_names_the_key_and_the_problem(spec: str, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        load_spec(spec, **kwargs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = \n", "not a readable TOML"),
        ("[fixed]\nepochs = 2\n[colour]\nx = 1\n", "unknown key 'colour'"),
        ('preset = "table9"\n', "preset 'table9'"),
        ("[[cells]]\nlabel = 'x'\n", "no feature sets"),
        ("fixed = 3\n", r"\[fixed\] must be a table"),
        ("[params]\naudio = 'is13'\nepochs = 3\n", r"goes to \[fixed\] epochs=3"),
    ],
)
def test_malformed_spec_files_are_refused_with_the_file_named(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_spec(str(path))
    assert str(path) in str(error.value)


def test_every_preset_row_shares_the_presets_protocol_and_classes() -> None:
    """Rows of one table are comparable: the same protocol and label set throughout."""
    for name in PRESETS:
        cells = load_spec(name).cells
        assert len({(c.options["protocol"], c.options["classes"]) for c in cells}) == 1, name


def test_doctests() -> None:
    import doctest

    import ser.runtime.cluster
    import ser.sweep.probe
    import ser.sweep.spec

    for module in (ser.sweep.spec, ser.sweep.probe, ser.runtime.cluster):
        assert doctest.testmod(module).failed == 0, module.__name__


@pytest.mark.parametrize(
    ("preset", "fixed"), [("msmser-table2", "loso"), ("fusion-study", "session5")]
)
def test_the_papers_tables_take_the_script_free_protocols(preset: str, fixed: str) -> None:
    """Their text rows read IEMOCAP's scripted lines in training under the papers'
    protocols; a grid over the protocol runs each cell both ways."""
    grid = f"{fixed},{fixed}-script"
    spec = load_spec(preset, grid={"protocol": grid})
    protocols = {cell.options["protocol"] for cell in spec.cells}
    assert protocols == {fixed, f"{fixed}-script"}
    assert len(spec.cells) == 2 * len(load_spec(preset).cells)
    for protocol in protocols:  # each one IEMOCAP's store resolves, the -script one too
        assert str(KINDS["iemocap"].parse_protocol(protocol)) == protocol
    with pytest.raises(ConfigError):
        KINDS["iemocap"].parse_protocol(f"{fixed}-nonsense")
