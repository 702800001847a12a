"""`ser export`: a trained run as a folder others can use (docs/export.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ser.commands.outputs import output_folder
from ser.export.members import CHOICES
from ser.export.write import ExportConfig, export_run


@click.command("export")
@click.argument("run", type=click.Path())
@click.argument("out", type=click.Path())
@click.option(
    "--members",
    default="all",
    show_default=True,
    metavar=CHOICES,
    help="The run's checkpoints the folder holds: every (seed, fold) (all, their average "
    "is the prediction, as ser predict --run gives), the best by validation score, the K "
    "best, or the model on all data (final).",
)
@click.option(
    "--with-encoders",
    is_flag=True,
    help="Copy the encoders' files into the folder (else it names them by hub id or path).",
)
@click.option(
    "--onnx",
    is_flag=True,
    help="Also export the head (and with --with-encoders each speech encoder) to ONNX.",
)
@click.option("--overwrite", is_flag=True, help="Replace an earlier export at OUT.")
def export_command(**o: object) -> None:
    """Export RUN's checkpoints to the folder OUT: model.safetensors, config.json, a model
    card (README.md), the encoders (--with-encoders) and ONNX graphs (--onnx). `ser predict
    --model OUT` predicts from it alone."""
    config = ExportConfig(**o)  # type: ignore[arg-type]
    output_folder(Path(config.out), "OUT")
    result = export_run(config, message=lambda line: click.echo(line, err=True))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    size = result.size / 2**20
    files = len(result.files)
    click.echo(f"exported {result.out} ({files} files, {size:.1f} MiB) in {result.seconds:.1f} s")


COMMANDS: list[click.Command] = [export_command]
