"""`ser predict`: a trained run's predictions (each of its heads') for new recordings."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ser.cache.atomic import atomic, writing
from ser.commands.options import FiniteFloat
from ser.commands.outputs import output_file
from ser.heads.predicted import joined
from ser.predict.challenge import challenge_csv, task_of
from ser.predict.config import RUNTIMES
from ser.predict.longest import FLOOR, LONGEST_UTTERANCE
from ser.predict.pcm import PcmSource
from ser.predict.run import PredictConfig, Prediction, PredictResult, predict
from ser.predict.stream import stream
from ser.predict.timeline import plot_timeline
from ser.predict.vad import VadOptions
from ser.predict.vtt import vtt_text
from ser.runtime.device import DEVICE_HELP
from ser.runtime.progress import log_console, task_bar
from ser.runtime.threads import set_torch_threads

# What a full disk's message says of a re-run: nothing to resume, the table is out already.
AGAIN = "it predicts anew (the predictions are printed above)"
# The files it writes besides its table: option name -> flag.
OUTPUTS = {
    "csv_path": "--csv",
    "vtt_path": "--vtt",
    "plot_path": "--plot",
    "challenge_path": "--challenge-csv",
}


def _output(key: str, help: str) -> Callable[[Any], Any]:
    """The option (`OUTPUTS[key]`) naming a file written besides the table."""
    return click.option(OUTPUTS[key], key, type=click.Path(), help=help)


@click.command("predict")
@click.option("--run", type=click.Path(), help="Run directory (<out>/<name>) holding checkpoints.")
@click.option(
    "--model",
    type=click.Path(),
    help="A folder `ser export` wrote, instead of --run: it predicts from that folder alone.",
)
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default="torch",
    show_default=True,
    help="onnx: the exported folder's ONNX graphs on onnxruntime (ser export --onnx).",
)
@click.argument("inputs", nargs=-1)
@click.option("--text", help="Transcript of every input (multimodal runs).")
@click.option(
    "--transcript",
    type=click.Path(),
    help="Timed transcript (.srt or .vtt) of the one input: each segment gets the words "
    "timed within it. Without it, NAME.srt or NAME.vtt beside NAME.wav is used.",
)
@click.option(
    "--asr",
    help="Whisper model (hub id or folder) transcribing inputs that have no transcript.",
)
@click.option(
    "--asr-max-new-tokens",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Longest ASR text.",
)
@click.option(
    "--encoder",
    "encoders",
    multiple=True,
    type=click.Path(),
    help="Model folder standing in for a moved one the run's features came from; "
    "accepted only when its weights checksum is the recorded one. Repeatable.",
)
@click.option(
    "--checkpoint",
    default="folds",
    show_default=True,
    metavar="folds|final|held-out|KEY[,KEY...]",
    help="'folds': mean over every (seed, fold) checkpoint (refused when one is missing "
    "or unreadable); 'final'; 'held-out': each utterance of the run's own store by the "
    "folds whose test side held it alone (others fail); or the keys of the checkpoints "
    "to average.",
)
@click.option(
    "--device", default="auto", show_default=True, metavar="auto|cpu|cuda[:N]", help=DEVICE_HELP
)
@click.option(
    "--segment",
    metavar="fixed:SECONDS[:HOP]|vad",
    help="Predict each file in windows of SECONDS, one every HOP seconds (default SECONDS), "
    "or in its stretches of speech (vad: silero-vad): one row per segment, with its start "
    "and end. Without it, files over twice the run's longest training utterance "
    f"(at least {FLOOR:.0f} s; {LONGEST_UTTERANCE:.0f} s when the run does not say) are refused.",
)
@click.option(
    "--stream",
    "stream_source",
    metavar="-|PATH",
    help="Predict a live stream of 16 kHz mono 16-bit PCM (a WAV header is read off): stdin "
    "(-), a FIFO or a file still being written, cut as --segment vad cuts; one JSON line per "
    "segment as it closes.",
)
@click.option(
    "--stream-wait",
    type=FiniteFloat(),
    default=2.0,
    show_default=True,
    help="--stream of a regular file: seconds it may stop growing before it is taken as ended.",
)
@click.option("--min-segment", type=FiniteFloat(), help="vad: shorter speech is dropped (s) [0.5].")
@click.option("--max-segment", type=FiniteFloat(), help="vad: longer speech is split (s) [10].")
@click.option("--merge-gap", type=FiniteFloat(), help="vad: shorter pauses join speech (s) [0.3].")
@click.option("--pad", type=FiniteFloat(), help="vad: seconds kept around speech [0.1].")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Inputs per batch.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads for torch [from this process's CPU budget; see ser/runtime/threads.py].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="No progress (the inputs each encoder has done, on stderr: a bar on a terminal, "
    "else a line at most every 30 s from 10 s in).",
)
@_output("csv_path", "Also write a CSV.")
@_output("vtt_path", "Also write WebVTT subtitles: one cue per segment (needs --segment).")
@_output(
    "plot_path",
    "Also draw the timeline (PNG): class probabilities over time, segments shaded "
    "(needs --segment).",
)
@_output(
    "challenge_path",
    "Also write the MSP-Podcast challenge's submission file (Odyssey 2024 format): "
    "task 1 (FileName,EmoClass) from a run on the 8 primary emotions, task 2 "
    "(FileName,EmoAct,EmoVal,EmoDom) from a run on the three attributes.",
)
@click.option(
    "--challenge-task",
    type=click.Choice(["1", "2"]),
    help="The challenge task of a run that predicts both [the one it predicts].",
)
def predict_command(**o: Any) -> None:  # Any: each option's value, of its own type
    """Predict the emotion of AUDIO files, folders of them or CSV lists (path[,transcript]
    lines, optionally under a path,transcript header; a header with dialog and order
    columns gives whole conversations, which a dialog-context run predicts in context).

    Exit code 1 when any input could not be predicted (each says why).
    """
    err = log_console()
    threads = set_torch_threads(threads=o["threads"])
    # Said with the first note, once the run's checkpoints loaded: refusals come alone.
    pending = [f"torch threads: {threads.count} ({threads.source})"]

    def message(text: str) -> None:
        for line in [*pending, text]:
            # soft_wrap: a path stays whole on its line (rich cuts a log's lines at 80 columns)
            err.print(line, highlight=False, soft_wrap=True)
        pending.clear()

    for option in ("vtt", "plot"):
        if o[f"{option}_path"] and not o["segment"]:
            raise click.UsageError(f"--{option} draws on segments: give --segment too")
    if o["challenge_path"] and o["segment"]:
        raise click.UsageError("--challenge-csv scores whole files: leave --segment out")
    for key, flag in OUTPUTS.items():  # checked before a checkpoint loads
        if o[key]:
            output_file(Path(o[key]), flag)
    fields = {f.name: o[f.name] for f in dataclasses.fields(PredictConfig) if f.name != "vad"}
    fields["run"] = o["run"] or ""
    if o["stream_source"] is not None:
        live(PredictConfig(**fields, vad=vad_options(o)), o, message)
        return
    if not o["inputs"]:
        raise click.UsageError("give the files to predict (or --stream SOURCE)")
    config = PredictConfig(**fields, vad=vad_options(o))

    def refuse(run: PredictResult) -> None:  # what the run cannot give, before any audio
        if o["plot_path"] and not run.categorical:
            raise click.UsageError("--plot draws class probabilities: this run predicts no class")
        if o["challenge_path"]:
            task_of(run, o["challenge_task"])

    with task_bar(err, not o["quiet"]) as bar:  # an encoder's inputs done
        result = predict(config, message=message, check=refuse, bar=bar)
    if o["as_json"]:
        click.echo(json.dumps(as_json(result)))
    else:
        Console().print(table(result))
    if o["csv_path"]:  # after the table: a full disk loses no prediction
        write_csv(Path(o["csv_path"]), result)
    if o["vtt_path"]:
        write_vtt(Path(o["vtt_path"]), result)
    if o["challenge_path"]:
        write_challenge(Path(o["challenge_path"]), result, o["challenge_task"])
    if o["plot_path"]:
        with writing(Path(o["plot_path"]), "the timeline", AGAIN):
            plot_timeline(result.predictions, result.classes, Path(o["plot_path"]))
    for note in result.notes:
        err.print(f"note: {note}", highlight=False, markup=False)
    for p in result.predictions:
        if p.error:
            err.print(f"error: {p.path}: {p.error}", highlight=False, markup=False, soft_wrap=True)
    if result.failed:
        sys.exit(1)


def live(config: PredictConfig, o: dict[str, Any], message: Callable[[str], None]) -> None:
    """--stream: a JSON line per segment on stdout, flushed as each closes."""
    clashing = [
        f
        for f in (
            "inputs",
            "segment",
            "csv_path",
            "vtt_path",
            "plot_path",
            "challenge_path",
            "text",
            "transcript",
        )
        if o[f]
    ]
    if clashing:
        names = ", ".join(
            OUTPUTS.get(f, "--" + f.removesuffix("_path").replace("_", "-")) for f in clashing
        )
        raise click.UsageError(f"--stream predicts the stream alone: leave out {names}")

    def emit(line: dict[str, Any]) -> None:
        click.echo(json.dumps(line))
        sys.stdout.flush()

    stream(config, PcmSource(o["stream_source"], o["stream_wait"]), emit, message)


def vad_options(o: dict[str, Any]) -> VadOptions | None:
    """The --segment vad options given (None: none given), the others their defaults."""
    given = {f.name: o[f.name] for f in dataclasses.fields(VadOptions) if o[f.name] is not None}
    return VadOptions(**given) if given else None


def segmented(result: PredictResult) -> bool:
    return any(p.start is not None for p in result.predictions)


def as_json(result: PredictResult) -> dict[str, Any]:
    """The result as one JSON object: the run's heads' keys (`Head.predict_run`,
    `Head.predict_json`) beside the input's own; a segment's `start` and `end` only
    with --segment."""
    spans = segmented(result)
    tops = joined([o.head.predict_run(o.names) for o in result.heads])
    return {
        "classes": list(result.classes),
        "checkpoints": list(result.checkpoints),
        "predictions": [_json(p, result, spans) for p in result.predictions],
        "notes": list(result.notes),
        "dialog_context_lost": result.dialog_context_lost,
        **tops,
        "failed": result.failed,
    }


def _json(p: Prediction, result: PredictResult, spans: bool) -> dict[str, Any]:
    """An input's JSON object: the category's keys lead, right after its path, where
    `ser predict` has always written them; the other heads' close it."""
    made = [
        (o.head.category, o.head.predict_json(p.heads.get(o.head.name), o.names))
        for o in result.heads
    ]
    lead = joined([keys for first, keys in made if first])
    rest = joined([keys for first, keys in made if not first])
    own = {
        "transcript": p.transcript,
        "transcript_source": p.transcript_source,
        "notes": list(p.notes),
        "error": p.error,
        "dialog": p.dialog,
        "order": p.order,
    }
    span = {"start": p.start, "end": p.end} if spans else {}
    known = (
        {"utterance": p.utterance, "held_out_by": [*p.held_out_by], "seen_by": [*p.seen_by]}
        if p.utterance is not None
        else {}
    )  # an utterance of the run's own store
    return {"path": p.path, **lead, **own, **known, **span, **rest}


def _span(p: Prediction) -> list[str]:
    return ["", ""] if p.start is None or p.end is None else [f"{p.start:.2f}", f"{p.end:.2f}"]


def _cells(p: Prediction, result: PredictResult, as_csv: bool) -> list[Any]:
    """The heads' cells of an input's row (`Head.predict_cells`), in the run's order."""
    parts = [(o, p.heads.get(o.head.name)) for o in result.heads]
    return [cell for o, part in parts for cell in o.head.predict_cells(part, o.names, as_csv)]


def table(result: PredictResult) -> Table:
    title = f"{len(result.checkpoints)} checkpoint(s): {', '.join(result.checkpoints)}"
    out = Table(title=title)
    out.add_column("file", overflow="fold")
    spans = segmented(result)
    if spans:
        out.add_column("start", justify="right")
        out.add_column("end", justify="right")
    for o in result.heads:
        for column in o.head.predict_columns(o.names, as_csv=False):
            out.add_column(column.header, justify="right" if column.right else "left")
    out.add_column("notes", overflow="fold")
    # Where no head's cells say that an input failed, its notes do.
    said = any(o.head.predict_fails(o.names) for o in result.heads)
    for p in result.predictions:
        asr = [f"ASR: {p.transcript}"] if p.transcript_source == "asr" else []
        notes = "; ".join(p.notes + asr)
        span = _span(p) if spans else []
        error = p.error if said or p.error is None else f"failed: {p.error}"
        out.add_row(Path(p.path).name, *span, *_cells(p, result, False), error or notes)
    return out


def write_csv(path: Path, result: PredictResult) -> None:
    """One line per input (per segment with --segment: `start, end` after `path`);
    `dialog, order` columns last when the inputs gave them. Atomic: a full disk leaves
    the old file or none, and says so in one line."""
    turns = any(p.dialog is not None for p in result.predictions)
    spans = segmented(result)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = [c.header for o in result.heads for c in o.head.predict_columns(o.names, True)]
    header = ["path", *(["start", "end"] if spans else []), *columns]
    header += ["transcript", "transcript_source", "error"]
    writer.writerow([*header, *(["dialog", "order"] if turns else [])])
    for p in result.predictions:
        span = _span(p) if spans else []
        own = [p.transcript or "", p.transcript_source or ""]
        row = [p.path, *span, *_cells(p, result, True), *own]
        where = [p.dialog or "", "" if p.order is None else p.order] if turns else []
        writer.writerow([*row, p.error or "", *where])
    text = buffer.getvalue()
    atomic(path, lambda tmp: tmp.write_text(text, "utf-8", newline=""), "the predictions", AGAIN)


def write_challenge(path: Path, result: PredictResult, task: str | None) -> None:
    """The MSP-Podcast challenge's submission file (`ser.predict.challenge`), atomically."""
    text = challenge_csv(result, task)
    atomic(path, lambda tmp: tmp.write_text(text, "utf-8"), "the submission file", AGAIN)


def write_vtt(path: Path, result: PredictResult) -> None:
    """The segments' WebVTT cues, atomically (as `write_csv`)."""
    text = vtt_text(result.predictions, [o.head for o in result.heads])
    atomic(path, lambda tmp: tmp.write_text(text, "utf-8"), "the subtitles", AGAIN)


COMMANDS: list[click.Command] = [predict_command]
