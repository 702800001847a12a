"""`ser train` (fusion models on cached features) and `ser report` (tables and plots)."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ser.commands.options import THREADS_HELP, command_line, interrupted
from ser.commands.outputs import output_folder
from ser.commands.train_summary import summary_table
from ser.corpus.protocols.folds import VAL_ALIASES
from ser.errors import ConfigError, Interrupted, ReportError, SerError
from ser.models import FAMILIES
from ser.report.breakdown import Labelled, run_predictions
from ser.report.layer_weights import weights_lines
from ser.runs.record import RECORD
from ser.runtime.progress import log_console, on_terminal
from ser.track.console import ConsoleProgress
from ser.track.progress import Heartbeat
from ser.train.option_table import MODEL, RUN, Option, train_config, train_options
from ser.train.recipe import json_summary, train


class _TrainCommand(click.Command):
    """`ser train`, its options made from `ser.train.options` when asked for (a family
    registered after import has its own), under a heading per family in --help."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        try:  # a plugin's option that collides with ser's: said as any refusal is
            options = train_options()
        except SerError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)
        self.params = [*(_click_option(o) for o in options.values()), _JSON]
        return super().get_params(ctx)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(_heading(getattr(param, "section", RUN)), []).append(record)
        for heading, rows in sections.items():
            with formatter.section(heading):
                formatter.write_dl(rows)


_METAVARS = {int: "INTEGER", float: "FLOAT", str: "TEXT", tuple: "N,N,..."}
_JSON = click.Option(
    ["--json", "as_json"], is_flag=True, help="Print the summary as one JSON object."
)


def _click_option(option: Option) -> click.Option:
    """The option as click takes it: a text `train_config` parses (as a sweep's), a flag."""
    flag = "--" + option.name.replace("_", "-")
    choices = "|".join(str(c) for c in option.choices if c is not None)
    metavar = f"[{choices}]" if choices else option.meta.get("metavar", _METAVARS.get(option.kind))
    made = click.Option(
        [f"{flag}/--no-{flag[2:]}" if option.kind is bool else flag, option.name],
        metavar=metavar,
        default=option.default,
        required=option.required,
        envvar=option.meta.get("envvar"),
        show_envvar="envvar" in option.meta,
        help=(THREADS_HELP if option.kind == "threads" else option.help) + _defaults(option),
        multiple=option.kind == "finetune",
    )
    made.section = option.section  # type: ignore[attr-defined]
    return made


def _defaults(option: Option) -> str:
    """ " [msmser 768, dialog 100]" (a default per family), " [default: 30]", or ""."""
    if option.defaults and option.section not in FAMILIES:
        return " [" + ", ".join(f"{f} {_shown(v)}" for f, v in option.defaults.items()) + "]"
    default = next(iter(option.defaults.values())) if option.defaults else option.default
    return "" if default is None else f" [default: {_shown(default)}]"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _heading(section: str) -> str:
    if section == RUN:
        return "Options"
    if section == MODEL:
        return "Model options (--fusion picks the family; an option it lacks is refused)"
    return f"{section}: {FAMILIES[section].help}"


@click.command("train", cls=_TrainCommand)
def train_command(**options: Any) -> None:
    """Train a fusion model on cached features; write <out>/<name>/run.json."""
    as_json = options.pop("as_json")
    if options.get("val") in VAL_ALIASES:
        new = VAL_ALIASES[options["val"]]
        click.echo(f"note: --val {options['val']} is now spelled --val {new}", err=True)
    config = train_config(options)
    output_folder(Path(config.out), "--out")
    err = log_console()
    tty = on_terminal(err)
    progress = ConsoleProgress(err, live=tty and not as_json, plain=not tty)
    try:
        with progress.bar:
            record = train(config, Heartbeat(progress))  # a line a minute during long epochs
    except KeyboardInterrupt as stop:
        again = command_line(click.get_current_context(), OVERWRITE)
        interrupted(interrupted_line(stop, again))
    if as_json:
        click.echo(json.dumps(json_summary(record)))
        return
    out = Console()
    if not out.is_terminal:  # a log has no width: each row on one line, not wrapped at 80
        out.width = max(out.width, 120)
    out.print(summary_table(record))
    for line in weights_lines(record):  # a run on every layer of an encoder (`.L*`)
        click.echo(line)
    click.echo(f"run record: {Path(config.out) / record.name / RECORD}")


OVERWRITE = ("overwrite",)  # left out of the command that resumes: it would start anew


def interrupted_line(stop: KeyboardInterrupt, again: str) -> str:
    """Ctrl-C's one line: what the runs keep, and `again`, the command that resumes."""
    if not isinstance(stop, Interrupted):  # before any (seed, fold) began
        return f"interrupted before training began; to run it again: {again}"
    return f"interrupted: {'; '.join(stop.kept)}; to resume: {again}"


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "csv"]), default="md", show_default=True)
@click.option(
    "--plots",
    type=click.Path(path_type=Path),
    default=None,
    help="Write PNG plots (confusion matrices, curves, learnt layer weights, predicted "
    "against gold attributes) into this directory.",
)
@click.option(
    "--by",
    type=click.Choice(["class", "speaker"]),
    multiple=True,
    help="After the table, each run's recall per class or UA / WA per speaker, from its "
    "predictions.csv (every seed's test predictions pooled). Repeatable.",
)
@click.option(
    "--paired",
    is_flag=True,
    help="Two runs: a paired bootstrap of their UA and WA on the utterances both tested "
    "(1000 resamples, a fixed seed), from their predictions.csv.",
)
@click.option(
    "--calibration",
    is_flag=True,
    help="After the table, each run's expected calibration error (top label, 15 bins), "
    "its fitted temperature and, on corpora with annotators' votes, the Jensen-Shannon "
    "divergence to them, from its predictions.csv; with --plots, a reliability diagram "
    "per run.",
)
def report_command(
    run_dirs: tuple[Path, ...],
    fmt: str,
    plots: Path | None,
    by: tuple[str, ...],
    paired: bool,
    calibration: bool,
) -> None:
    """One table row per run, like the papers' tables; optional PNG plots, breakdowns by
    class or speaker and a paired test. A `ser sweep` folder: its tables as the papers
    print them, with the published numbers."""
    from ser.sweep.report import missing_weights, sweep_report
    from ser.sweep.results import damaged_cells, is_sweep, load_sweeps

    if plots is not None:
        output_folder(plots, "--plots")
    if len(run_dirs) == 1 and is_sweep(run_dirs[0]):  # a `ser sweep --out` folder
        from ser.sweep.plots import sweep_plots

        if by or paired or calibration:
            raise ConfigError(
                "--by, --paired and --calibration take run directories (a sweep's cells/<key>)"
            )
        sweeps = load_sweeps(run_dirs[0])
        click.echo(sweep_report(run_dirs[0], fmt=fmt, sweeps=sweeps), nl=False)
        for line in damaged_cells(sweeps):  # shown as "damaged" in the tables
            click.echo(f"damaged: {line}", err=True)
        for line in missing_weights(run_dirs[0], sweeps):  # "-" where a table reads them
            click.echo(f"missing: {line}", err=True)
        if plots is not None:
            click.echo(f"{len(sweep_plots(run_dirs[0], plots))} plot(s) in {plots}", err=True)
        return
    from ser.report.cross import cells_of_runs, cross_tables, tables_csv, tables_md
    from ser.report.published_sentiment import runs_md
    from ser.report.runs import load_runs, report_table

    readable, unreadable = load_runs(_run_dirs(run_dirs))
    for error in unreadable:  # one line each; the others reported all the same
        click.echo(f"{'skipped' if readable else 'error'}: {error}", err=True)
    if not readable:
        sys.exit(ReportError.exit_code)
    run_dirs = tuple(path for path, _ in readable)
    runs = [run for _, run in readable]
    if paired and len(runs) != 2:
        raise ConfigError(f"--paired compares two runs, got {len(runs)}")
    click.echo(report_table(runs, fmt=fmt), nl=False)
    if fmt == "md" and (published := runs_md(runs)):  # MulT, MISA, Self-MM beside MOSEI's
        click.echo("\n" + published, nl=False)
    crossed = cross_tables(cells_of_runs(runs))  # runs trained on one corpus, tested on another
    if crossed:
        click.echo()
        click.echo((tables_csv if fmt == "csv" else tables_md)(crossed), nl=False)
    # Each run's predictions.csv read once, if a table or a plot wants it.
    labelled = functools.cache(lambda i: run_predictions(run_dirs[i], runs[i]))
    if by or paired:
        _predictions_tables([labelled(i) for i in range(len(runs))], fmt, by, paired)
    if calibration:
        from ser.report.calibration import calibration_table

        click.echo()
        each = [(run, labelled(i)) for i, run in enumerate(runs)]
        click.echo(calibration_table(each, fmt), nl=False)
    if plots is not None:
        # matplotlib: only when plots are asked for
        from ser.report.cross_plot import write_heatmaps
        from ser.report.plots import (
            plots_predictions,
            write_plots,
            write_prediction_plots,
            write_reliability_plots,
        )

        written = write_plots(runs, plots) + write_heatmaps(crossed, plots, "runs")
        scored = [labelled(i) for i, run in enumerate(runs) if plots_predictions(run)]
        written += write_prediction_plots(scored, plots)
        if calibration:
            written += write_reliability_plots([labelled(i) for i in range(len(runs))], plots)
        click.echo(f"{len(written)} plot(s) in {plots}", err=True)


def _run_dirs(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """The run directories named: a folder of runs (no run.json, runs in it: a `ser
    train --out`) stands for its runs, in name order."""
    out: list[Path] = []
    for path in paths:
        inner = sorted(p.parent for p in path.glob(f"*/{RECORD}")) if path.is_dir() else []
        out += inner if inner and not (path / RECORD).exists() else [path]
    return tuple(out)


def _predictions_tables(
    labelled: list[Labelled], fmt: str, by: tuple[str, ...], paired: bool
) -> None:
    """`ser report`'s tables from the runs' predictions.csv, each after an empty line."""
    from ser.report.breakdown import breakdown_table, left_out
    from ser.report.paired import paired_bootstrap, paired_table

    for which in dict.fromkeys(by):
        click.echo()
        click.echo(breakdown_table(labelled, which, fmt), nl=False)
    if by and fmt == "csv" and (names := left_out(labelled)):  # markdown's legend says so
        click.echo(f"note: not broken down: {', '.join(names)} (no --by breakdown)", err=True)
    if paired:
        (label_a, a), (label_b, b) = labelled
        click.echo()
        results = paired_bootstrap(a, b)
        click.echo(paired_table(label_a, label_b, results, fmt), nl=False)
        if fmt == "csv" and results[0].untested:
            untested = ", ".join(results[0].untested)
            click.echo(f"note: not tested: {untested} (no paired test)", err=True)


COMMANDS: list[click.Command] = [train_command, report_command]
