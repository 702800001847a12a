"""What `ser extract` prints of a run: the sets it wrote or found complete, their rows and
sizes, the ASR transcripts' WER, and the utterances that failed and the corpus problems met
(a receipt's summary, `report_summary`, prints the same)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ser.runtime.units import human_bytes

if TYPE_CHECKING:
    from ser.extract.run import ExtractReport

_SHOWN_FAILURES = 20


def report_summary(report: ExtractReport) -> dict[str, Any]:
    """The report as plain data: printed now, and kept in the store's receipt."""
    kept = (
        "n_utterances",
        "sets",
        "extracted",
        "failures",
        "transcripts",
        "found",
        "corpus_problems",
    )
    return {k: v for k, v in asdict(report).items() if k in kept}


def print_summary(
    nothing_to_do: bool, store: Path, summary: dict[str, Any], seconds: float
) -> None:
    transcripts = summary.get("transcripts")
    names = [transcripts["name"]] if transcripts else []
    names += [s["name"] for s in summary["sets"]]
    n, shown = summary["n_utterances"], ", ".join(names)
    if nothing_to_do:
        click.echo(f"nothing to do: {shown} already complete in {store} ({n} utterances)")
    else:
        done = f"extracted {len(summary['extracted'])} feature set(s) for {n} utterances"
        click.echo(f"{done} into {store} in {seconds:.1f} s")
    for new, old in summary.get("found", ()):
        click.echo(
            f"  {new}: found in the store as {old} (same fingerprint; an earlier ser named "
            "it so), kept under that name: --features takes either the kind or that name"
        )
    width = max(len(s["name"]) for s in summary["sets"])
    for s in summary["sets"]:
        click.echo(
            f"  {s['name']:<{width}}  {s['rows']:>10,} rows x {s['dim']:<5} {s['dtype']:<8}"
            f"{human_bytes(s['bytes']):>11}  {s['failed']} failed"
        )
    if transcripts:
        wer = transcripts["wer"]
        shown = "-" if wer is None else f"{100 * wer:.2f} %"
        click.echo(
            f"  {transcripts['name']}: transcripts by {transcripts['asr_model']}, "
            f"{transcripts['failed']} failed, WER {shown} against the gold transcripts "
            f"({transcripts['words']:,} words)"
        )
    _print_failures(summary["failures"])
    _print_corpus_problems(summary.get("corpus_problems", ()))  # receipts before it lack it


def _print_corpus_problems(problems: Sequence[Sequence[str]]) -> None:
    """What reading the corpus met (a missing label file, a line not UTF-8), so that an
    utterance left out or read otherwise is said here too, not only by `ser corpus summary`."""
    if not problems:
        return
    click.echo(
        f"corpus problems ({len(problems)}; `ser corpus summary CORPUS_ROOT` lists them all):"
    )
    for utt_id, problem in problems[:_SHOWN_FAILURES]:
        click.echo(f"  {utt_id}: {problem}")
    more = len(problems) - _SHOWN_FAILURES
    if more > 0:
        click.echo(f"  ... and {more} more")


def _print_failures(failures: Sequence[Sequence[str]]) -> None:
    if not failures:
        return
    by_utterance: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, utt_id, reason in failures:
        by_utterance[(utt_id, reason)].append(name)
    click.echo(f"failures ({len(by_utterance)}):")
    for (utt_id, reason), names in list(by_utterance.items())[:_SHOWN_FAILURES]:
        click.echo(f"  {utt_id} [{', '.join(names)}]: {reason}")
    more = len(by_utterance) - _SHOWN_FAILURES
    if more > 0:
        click.echo(f"  ... and {more} more (`ser store info` lists them all)")
