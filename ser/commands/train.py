"""`ser train` (fusion models on cached features) and `ser report` (tables and plots)."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from ser.commands.options import THREADS, THREADS_HELP
from ser.corpus.labels import LABEL_SETS
from ser.runtime.plain_progress import INTERVAL, Clock, EpochLines
from ser.runtime.precision import PRECISIONS
from ser.train.features import parse_feature_list
from ser.train.metrics import mean_std_text
from ser.train.models.config import FUSION_POSITIONS, FUSIONS, LOSSES, MODALITIES, ModelConfig
from ser.train.progress import Heartbeat, fold_label
from ser.train.protocols import PROTOCOLS, VAL_MODES
from ser.train.report import run_pooled, run_summary, spread_label
from ser.train.run import DEVICES, Progress, TrainConfig, json_summary, train

REDRAW_SECONDS = 0.25  # the live progress bar's redraw interval, at most


@click.command("train")
@click.option(
    "--store",
    required=True,
    envvar="SER_STORE",
    show_envvar=True,
    type=click.Path(path_type=str),
    help="Feature store (.zarr or .h5).",
)
@click.option(
    "--features",
    "features",
    required=True,
    metavar="A+B",
    help="Feature sets joined by '+', by name or extractor (hubert+mpnet, is13+bert).",
)
@click.option(
    "--fusion",
    type=click.Choice(FUSIONS),
    default="mit",
    show_default=True,
    help="mit: MSMSER; add|concat|attention (+ --fusion-at): Wu et al.; "
    "late-prob: Zhou et al.; none: one feature set.",
)
@click.option(
    "--fusion-at",
    type=click.Choice(FUSION_POSITIONS),
    default=None,
    help="Fusion position of the fusion study.",
)
@click.option("--loss", type=click.Choice(LOSSES), default="single", show_default=True)
@click.option(
    "--queries", type=int, default=30, show_default=True, help="MSMSER emotion queries L."
)
@click.option("--rmm/--no-rmm", default=True, show_default=True, help="Random modality masking.")
@click.option("--no-encoder", is_flag=True, help="MSMSER without uni-modal encoders.")
@click.option("--no-selfatt", is_flag=True, help="MSMSER without frame self-attention.")
@click.option(
    "--eval-mask",
    type=click.Choice(MODALITIES),
    default=None,
    help="Mask this modality when testing (the model is selected unmasked).",
)
@click.option("--context", is_flag=True, help="fusion none: the fusion study's dialog context.")
@click.option(
    "--staged/--no-staged",
    default=None,
    help="late-prob: train each branch alone first, then the whole model (the paper's "
    "procedure; default).",
)
@click.option(
    "--d-model", type=int, default=None, help="Model width (family default; 768 for MSMSER)."
)
@click.option("--heads", type=int, default=None, help="Attention heads (family default).")
@click.option("--layers", type=int, default=None, help="Encoder / Bi-GRU layers (family default).")
@click.option("--dropout", type=float, default=None, help="Dropout (family default).")
@click.option(
    "--classes",
    type=click.Choice([name for name in LABEL_SETS if name != "all"]),
    default=None,
    help="Label set [family default].",
)
@click.option(
    "--protocol",
    type=click.Choice(PROTOCOLS),
    default=None,
    help="Evaluation protocol [family default].",
)
@click.option(
    "--val",
    type=click.Choice(VAL_MODES),
    default="session",
    show_default=True,
    help="Validation carved from the training side; none: train on all training sessions "
    "for the fixed epochs and test the last (the papers' training set).",
)
@click.option("--epochs", type=int, default=None, help="[family default]")
@click.option(
    "--batch-size", type=int, default=None, help="Utterances, or dialogs [family default]."
)
@click.option("--lr", type=float, default=None, help="[family default]")
@click.option("--weight-decay", type=float, default=None, help="[family default]")
@click.option(
    "--patience", type=int, default=None, help="Early stopping patience (off by default)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--seeds", type=int, default=None, help="Repeats with seeds seed, seed+1, ... [family default]."
)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="auto: bf16 autocast on CUDA (fp16 where a GPU lacks bf16), fp32 on the CPU. "
    "bf16 autocast on a CPU with native bf16 is ~20% faster but scored ~0.5 UA points "
    "lower on average in our tests. Recorded.",
)
@click.option(
    "--threads",
    type=THREADS,
    metavar="N|follow",
    default=None,
    help=THREADS_HELP,
)
@click.option(
    "--members-at-once",
    type=int,
    default=None,
    help="(seed, fold) runs trained together as one stacked model [all of them]; lower it "
    "to bound memory, 1 trains them one after another (the same results up to float "
    "rounding, which a long run can carry into a few predictions).",
)
@click.option("--out", type=click.Path(path_type=str), default="runs", show_default=True)
@click.option("--name", default=None, help="Run name [derived from the config].")
@click.option("--overwrite", is_flag=True, help="Discard an existing run of the same name.")
@click.option(
    "--final",
    is_flag=True,
    help="Also train one model on every session for the folds' median selected epoch "
    "(checkpoint 'final', for `ser predict --checkpoint final`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def train_command(**options: Any) -> None:
    """Train a fusion model on cached features; write <out>/<name>/run.json."""
    config = config_from_options(options)
    err = Console(stderr=True)
    tty = sys.stderr.isatty()
    progress = _ConsoleProgress(err, live=tty and not options["as_json"], plain=not tty)
    with progress:
        record = train(config, Heartbeat(progress))  # a line a minute during long epochs
    if options["as_json"]:
        click.echo(json.dumps(json_summary(record)))
        return
    out = Console()
    if not out.is_terminal:  # a log has no width: each row on one line, not wrapped at 80
        out.width = max(out.width, 120)
    out.print(summary_table(record))
    click.echo(f"run record: {Path(config.out) / record['name'] / 'run.json'}")


def config_from_options(o: Mapping[str, Any]) -> TrainConfig:
    """`TrainConfig` from the options as click parses them (also what sweep cells hold)."""
    model = ModelConfig(
        fusion=o["fusion"],
        fusion_at=o["fusion_at"],
        loss=o["loss"],
        queries=o["queries"],
        rmm=o["rmm"],
        encoder=not o["no_encoder"],
        selfatt=not o["no_selfatt"],
        eval_mask=o["eval_mask"],
        context=o["context"],
        staged=o["staged"],
        d_model=o["d_model"],
        heads=o["heads"],
        layers=o["layers"],
        dropout=o["dropout"],
    )
    return TrainConfig(
        store=o["store"],
        features=parse_feature_list(o["features"]),
        model=model,
        classes=o["classes"],
        protocol=o["protocol"],
        val=o["val"],
        epochs=o["epochs"],
        batch_size=o["batch_size"],
        lr=o["lr"],
        weight_decay=o["weight_decay"],
        seed=o["seed"],
        seeds=o["seeds"],
        patience=o["patience"],
        device=o["device"],
        precision=o["precision"],
        threads=o["threads"],
        members_at_once=o["members_at_once"],
        out=o["out"],
        name=o["name"],
        overwrite=o["overwrite"],
        final=o["final"],
    )


class _ConsoleProgress(Progress):
    """Notes on stderr; a live bar per fold when stderr is a terminal, else (`plain`) one
    line per epoch at most every `interval` seconds (a log would otherwise show nothing
    between a fold's first line and its result)."""

    def __init__(
        self,
        console: Console,
        live: bool,
        plain: bool = False,
        interval: float = INTERVAL,
        clock: Clock = time.monotonic,
    ) -> None:
        self.console, self.live = console, live
        self.shows_epochs = live or plain
        self.lines = EpochLines(self._line, interval, clock) if plain else None
        self.bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not live,
            # Redrawn from the epoch hook instead of a 10 Hz thread: that thread takes the
            # GIL from the training loop between its many small ops.
            auto_refresh=False,
        )
        self.task: Any = None
        self.clock = clock
        self.drawn = -math.inf  # self.clock() at the last redraw

    def __enter__(self) -> _ConsoleProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def message(self, text: str) -> None:
        # soft_wrap: one line in a log (rich wraps a file at 80 columns otherwise)
        self.console.print(text, highlight=False, soft_wrap=True)

    def _line(self, text: str) -> None:
        # soft_wrap: one line in the log, however narrow rich thinks a file is
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def heartbeat(self, text: str) -> None:
        self._line(text)

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        label = fold_label(seed, fold)
        self.task = self.bar.add_task(label, total=epochs, status="")
        if self.lines is not None:
            self.lines.start(label)

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        if self.lines is not None:
            self.lines.epoch(epoch, epochs, train_loss, val_ua)
        if self.task is not None and self.live:  # a disabled bar needs no redraws
            status = f"loss {train_loss:.3f} val UA {val_ua:.1f}"
            self.bar.update(self.task, completed=epoch, status=status)
            now = self.clock()
            if now - self.drawn >= REDRAW_SECONDS or epoch == epochs:
                self.bar.refresh()
                self.drawn = now

    def fold_end(self, seed: int, fold: str, entry: dict[str, Any]) -> None:
        if self.lines is not None:
            self.lines.end()
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        m = entry["metrics"]
        self.console.print(
            f"seed {seed} {fold}: UA {m['ua']:.2f} WA {m['wa']:.2f} F1 {m['f1']:.2f} "
            f"(best epoch {entry['best_epoch']}, {entry['seconds']:.1f} s{_share(entry)})",
            highlight=False,
            soft_wrap=True,  # one line in a log, as the notes
        )


def _share(entry: dict[str, Any]) -> str:
    """What a fold's seconds are when it trained stacked with others."""
    stacked = int(entry.get("stacked", 1))
    return f": 1/{stacked} of its stacked model's time" if stacked > 1 else ""


def summary_table(record: dict[str, Any]) -> Table:
    """Per-fold scores, their mean (± std over seeds, or one seed's folds; no ± for one
    value) and the pooled scores (every fold's predictions together) of a run record."""
    table = Table(
        title=f"{record['name']} ({record['protocol']}, {len(record['classes'])} classes)"
    )
    for column in ("seed", "fold", "UA", "WA", "F1", "best epoch", "seconds"):
        table.add_column(column, justify="left" if column == "fold" else "right")
    for e in record["folds"]:
        m = e["metrics"]
        table.add_row(
            str(e["seed"]),
            e["fold"],
            f"{m['ua']:.2f}",
            f"{m['wa']:.2f}",
            f"{m['f1']:.2f}",
            str(e["best_epoch"]),
            f"{e['seconds']:.1f}",
        )
    s, pooled = run_summary(record), run_pooled(record)
    means = [mean_std_text(s[k], s[f"{k}_std"], int(s["n"])) for k in ("ua", "wa", "f1")]
    table.add_row("mean", spread_label(s), *means, "", f"{record['seconds']:.1f}", style="bold")
    seeds = int(s["seeds"])
    over = "all folds" + (f", {seeds} seeds" if seeds > 1 else "")
    table.add_row("pooled", over, *(f"{pooled[k]:.2f}" for k in ("ua", "wa", "f1")), "", "")
    if any(int(e.get("stacked", 1)) > 1 for e in record["folds"]):
        table.caption = "a fold's seconds: its stacked model's time / the members trained in it"
    return table


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "csv"]), default="md", show_default=True)
@click.option(
    "--plots",
    type=click.Path(path_type=Path),
    default=None,
    help="Write PNG plots (confusion matrices, curves) into this directory.",
)
def report_command(run_dirs: tuple[Path, ...], fmt: str, plots: Path | None) -> None:
    """One table row per run, like the papers' tables; optional PNG plots. A `ser sweep`
    folder: its tables as the papers print them, with the published numbers."""
    from ser.sweep.report import is_sweep

    if len(run_dirs) == 1 and is_sweep(run_dirs[0]):  # a `ser sweep --out` folder
        from ser.sweep.plots import sweep_plots
        from ser.sweep.report import sweep_report

        click.echo(sweep_report(run_dirs[0], fmt=fmt), nl=False)
        if plots is not None:
            click.echo(f"{len(sweep_plots(run_dirs[0], plots))} plot(s) in {plots}", err=True)
        return
    from ser.train.report import load_run, report_table, write_plots

    runs = [load_run(path) for path in run_dirs]
    click.echo(report_table(runs, fmt=fmt), nl=False)
    if plots is not None:
        written = write_plots(runs, plots)
        click.echo(f"{len(written)} plot(s) in {plots}", err=True)


COMMANDS: list[click.Command] = [train_command, report_command]
