"""`ser corpus summary` and `ser demo-corpus`: look at a corpus, or write a synthetic one."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from ser.commands.options import audio_root_option, classes_option, corpus_option
from ser.commands.outputs import output_folder
from ser.corpus.options import ReadOptions
from ser.corpus.registry import read_corpus
from ser.errors import ConfigError
from ser.synth.acted import ActedConfig, ActedTruth, write_crema_d, write_ravdess
from ser.synth.cmu import CmuConfig, write_cmu
from ser.synth.corpus import SynthConfig, write_corpus, write_corpus_from_metadata
from ser.synth.emobox import EmoBoxConfig, write_emobox
from ser.synth.recording import write_recording
from ser.synth.talk import TalkConfig, write_meld, write_msp_podcast

SHOWN_PROBLEMS = 20
# The synthetic layouts of the other corpus kinds (ser/synth/acted.py, talk.py), by seed;
# IEMOCAP's (ser/synth/corpus.py) takes the options only it has.
LAYOUTS: dict[str, Callable[[Path, int], ActedTruth]] = {
    "crema-d": lambda out, seed: write_crema_d(out, ActedConfig(seed=seed)),
    "ravdess": lambda out, seed: write_ravdess(out, ActedConfig(seed=seed)),
    "msp-podcast": lambda out, seed: write_msp_podcast(out, TalkConfig(seed=seed)),
    "meld": lambda out, seed: write_meld(out, TalkConfig(speakers=4, seed=seed)),
    # An EmoBox checkout (data/<name>/, downloads/, a track2 file): read with --corpus emobox.
    "emobox": lambda out, seed: write_emobox(out, EmoBoxConfig(seed=seed)).acted(),
    # The CMU-MultimodalSDK's layout: full-video wavs, segmented transcripts, .csd labels.
    "cmu-mosei": lambda out, seed: write_cmu(out, CmuConfig("cmu-mosei", seed=seed)).acted(),
    "cmu-mosi": lambda out, seed: write_cmu(out, CmuConfig("cmu-mosi", seed=seed)).acted(),
    # Three minutes of two speakers' turns in one wav, for `ser predict --segment`.
    "recording": lambda out, seed: write_recording(out, seed=seed),
}
IEMOCAP_OPTIONS = ("dialogs_per_session", "metadata")


@click.group("corpus")
def corpus() -> None:
    """Inspect a corpus (IEMOCAP, CREMA-D, RAVDESS or a manifest)."""


@corpus.command("summary")
@click.argument("root", type=click.Path(path_type=Path))
@corpus_option()
@audio_root_option()
@classes_option("Class set: IEMOCAP's 4 (exc merged into hap), 5 (+fru), 6; a corpus's own.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def summary(
    root: Path, corpus: str | None, audio_root: Path | None, classes: str, as_json: bool
) -> None:
    """Counts per group (session, speaker or split) and class, speakers, hours, and the
    problems found in ROOT.

    ROOT is the IEMOCAP_full_release folder (the one holding Session1..Session5), a
    CREMA-D or RAVDESS root, a manifest file (.csv, .jsonl), or an EmoBox
    data/<name> folder or track2 file (--corpus emobox).
    """
    kind, reading = read_corpus(root, corpus, classes, ReadOptions(audio_root))
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
    type=click.Choice(["iemocap", *LAYOUTS]),
    default="iemocap",
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
@click.pass_context
def demo_corpus(
    ctx: click.Context,
    out: Path,
    dialogs_per_session: int,
    seed: int,
    layout: str,
    metadata: Path | None,
) -> None:
    """Write a synthetic corpus in the IEMOCAP layout (or --layout's) to OUT (a new or
    empty folder).

    OUT becomes the corpus root: for IEMOCAP it holds Session1..Session5. Speech is
    synthesized with prosody that follows the emotion; the text carries it only part of
    the time.
    """
    began = time.perf_counter()
    output_folder(out, "OUT")
    own = layout not in LAYOUTS  # the IEMOCAP layout, whose options these are
    given = [o for o in IEMOCAP_OPTIONS if _given(ctx, o)]
    if given and not own:
        raise ConfigError(f"--{given[0].replace('_', '-')} is IEMOCAP's: not for --layout {layout}")
    if not own:
        written = LAYOUTS[layout](out, seed)
        speakers = {speaker for _, speaker in written.files.values()}
        click.echo(
            f"wrote {len(written.files)} utterances of {len(speakers)} speakers in the "
            f"{layout} layout to {written.root} in {time.perf_counter() - began:.1f} s"
        )
        return
    if metadata is None:
        truth = write_corpus(out, SynthConfig(dialogs_per_session=dialogs_per_session, seed=seed))
    else:
        if _given(ctx, "dialogs_per_session"):
            raise ConfigError("--dialogs-per-session does not apply with --from-metadata")
        truth = write_corpus_from_metadata(out, metadata, seed=seed)
    seconds = time.perf_counter() - began
    utts = truth.utterances
    hours = sum(u.duration for u in utts) / 3600
    click.echo(
        f"wrote {len(utts)} utterances ({hours:.2f} h) in {len({u.dialog for u in utts})} "
        f"dialogs of {len({u.speaker for u in utts})} speakers to {truth.root} in {seconds:.1f} s"
    )


def _given(ctx: click.Context, option: str) -> bool:
    return ctx.get_parameter_source(option) is not click.core.ParameterSource.DEFAULT


COMMANDS: list[click.Command] = [corpus, demo_corpus]
