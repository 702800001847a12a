"""`ser corpus summary` and `ser demo-corpus`: look at a corpus, or write a synthetic one."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from ser.commands.options import Registered, audio_root_option, classes_option, corpus_option
from ser.commands.outputs import output_folder
from ser.corpus.kind import Synthetic, Toolkit, Written
from ser.corpus.options import ReadOptions
from ser.corpus.registry import KINDS, fallback, read_corpus
from ser.errors import ConfigError
from ser.runtime.progress import log_console, read_progress
from ser.synth.corpus import SynthConfig
from ser.synth.recording import write_recording
from ser.synth.toolkit import TOOLKIT

SHOWN_PROBLEMS = 20


def _recording(out: Path, seed: int, kit: Toolkit, options: Mapping[str, Any]) -> Written:
    """Three minutes of two speakers' turns in one wav, for `ser predict --segment`."""
    truth = write_recording(out, seed=seed)
    return Written.of(truth.root, truth.files)


def layouts() -> dict[str, Synthetic]:
    """`ser demo-corpus --layout`'s choices: every registered kind with a synthetic writer,
    the fallback kind first, then `recording` (not a corpus)."""
    found = {name: kind.synthetic for name, kind in KINDS.items() if kind.synthetic is not None}
    return {**found, "recording": Synthetic(_recording)}


def _owner(option: str) -> str:
    """The title of the kind whose writer takes a `ser demo-corpus` option."""
    return next(k.title for k in KINDS.values() if k.synthetic and option in k.synthetic.options)


@click.group("corpus")
def corpus() -> None:
    """Inspect a corpus of any kind (--corpus lists them)."""


@corpus.command("summary")
@click.argument("root", type=click.Path(path_type=Path))
@corpus_option()
@audio_root_option()
@classes_option("Class set: one the corpus has (`ser train --help` lists each kind's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def summary(
    root: Path, corpus: str | None, audio_root: Path | None, classes: str, as_json: bool
) -> None:
    """Counts per group (session, speaker or split) and class, speakers, hours, and the
    problems found in ROOT.

    ROOT is a corpus in one of the layouts --corpus lists (the IEMOCAP_full_release
    folder, a CREMA-D root, a manifest file...), its kind guessed when not given.
    """
    # On stderr (stdout is the summary): a 150k-utterance corpus takes ~10 s to read.
    with read_progress(log_console()) as told:
        kind, reading = read_corpus(root, corpus, classes, ReadOptions(audio_root), told)
    result = kind.summarize(reading, classes)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    _print_summary(reading.source or reading.root, f"{kind.title}, {classes}", result)


def _print_summary(root: Path, classes: str, result: dict[str, Any]) -> None:
    console = Console(highlight=False)
    key = next(k for k in result if k.startswith("per_"))
    names = list(next(iter(result[key].values()), {}))
    console.print(f"{root} ({classes} classes)")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column(key.removeprefix("per_"), no_wrap=True)
    for name in (*names, "total"):
        table.add_column(name, justify="right", no_wrap=True)
    totals = dict.fromkeys(names, 0)
    for session, counts in result[key].items():
        table.add_row(session, *map(str, counts.values()), str(sum(counts.values())))
        for name, count in counts.items():
            totals[name] += count
    table.add_row("all", *map(str, totals.values()), str(result["utterances"]), style="bold")
    console.print(table)
    console.print(
        f"{result['utterances']} utterances, {result['speakers']} speakers, "
        f"{result['hours']:.2f} h, {len(result['problems'])} problems"
    )
    for note in result.get("notes", ()):  # what a kind says beside its counts
        console.print(note, markup=False)
    for problem in result["problems"][:SHOWN_PROBLEMS]:
        console.print(f"  {problem['utt_id']}: {problem['problem']}", markup=False)
    if len(result["problems"]) > SHOWN_PROBLEMS:
        more = len(result["problems"]) - SHOWN_PROBLEMS
        console.print(f"  ... and {more} more (see --json)")


@click.command("demo-corpus")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--dialogs-per-session",
    type=click.IntRange(1, 30),
    show_default=True,
    default=SynthConfig.dialogs_per_session,
    help="Dialogs in each of the 5 sessions (24-40 utterances each).",
)
@click.option("--seed", type=int, default=SynthConfig.seed, show_default=True)
@click.option(
    "--layout",
    type=Registered(layouts),
    default=fallback().name,
    show_default=True,
    help="Whose folder layout, file names and labels: a corpus kind (--corpus) to test "
    "end to end without the licensed data, or `recording`: one long wav of turns for "
    "`ser predict --segment`; the options above and below are IEMOCAP's.",
)
@click.option(
    "--from-metadata",
    "metadata",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Write exactly the utterances of this CSV (utt_id, dialog, session, "
    "speaker_gender, kind, order, start, end, label[, text]) instead, to check "
    "structure.",
)
@click.option(
    "--utterances",
    type=click.IntRange(1),
    help="MSP-Podcast at a size: this many rows of labels and durations "
    "(Labels/durations.csv) in the real corpus's shape, and no audio.",
)
@click.option(
    "--hours", type=click.FloatRange(min=0, min_open=True), help="As --utterances, by hours."
)
@click.pass_context
def demo_corpus(
    ctx: click.Context,
    out: Path,
    dialogs_per_session: int,
    seed: int,
    layout: str,
    metadata: Path | None,
    utterances: int | None,
    hours: float | None,
) -> None:
    """Write a synthetic corpus in the IEMOCAP layout (or --layout's) to OUT (a new or
    empty folder).

    OUT becomes the corpus root: for IEMOCAP it holds Session1..Session5. Speech is
    synthesized with prosody that follows the emotion; the text carries it only part of
    the time.
    """
    began = time.perf_counter()
    output_folder(out, "OUT")
    synthetic = layouts()[layout]
    given = {
        o: value
        for o, value in (
            ("dialogs_per_session", dialogs_per_session),
            ("metadata", metadata),
            ("utterances", utterances),
            ("hours", hours),
        )
        if _given(ctx, o)
    }
    for option in given:
        if option not in synthetic.options:
            flag = f"--{option.replace('_', '-')}"
            raise ConfigError(f"{flag} is {_owner(option)}'s: not for --layout {layout}")
    written = synthetic.write(out, seed, TOOLKIT, given)
    seconds = time.perf_counter() - began
    speakers = f"of {written.speakers} speakers"
    where = (
        f"{written.detail} {speakers}" if written.detail else f"{speakers} in the {layout} layout"
    )
    click.echo(
        f"wrote {written.utterances} utterances {where} to {written.root} in {seconds:.1f} s"
    )


def _given(ctx: click.Context, option: str) -> bool:
    return ctx.get_parameter_source(option) is not click.core.ParameterSource.DEFAULT


COMMANDS: list[click.Command] = [corpus, demo_corpus]
