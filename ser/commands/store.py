"""`ser store info|verify|init|import`: look into, check and fill feature stores."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import click

from ser.commands.options import audio_root_option, classes_option, corpus_option
from ser.runtime.units import human_bytes

STORE_PATH = click.Path(path_type=Path)


@click.group("store")
def store() -> None:
    """Feature stores: a .zarr directory or an .h5 file of cached features."""


@store.command("info")
@click.argument("path", type=STORE_PATH)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def info(path: Path, as_json: bool) -> None:
    """Feature sets of the store at PATH: level, shape, dtype, size, fingerprint, state;
    and its ASR transcript sets, each with its word error rate against the gold
    transcripts."""
    from ser.cache import FeatureStore

    fs = FeatureStore.open(path)
    infos = [fs.info(name) for name in fs.feature_sets()]
    transcripts = {name: _transcript_fields(fs, name) for name in fs.transcript_sets()}
    if as_json:
        keys = ("level", "rows", "dim", "dtype", "bytes", "fingerprint", "complete", "failures")
        sets = {i.name: {key: getattr(i, key) for key in keys} for i in infos}
        out: dict[str, Any] = {"utterances": len(fs.manifest), "feature_sets": sets}
        if transcripts:
            out["transcript_sets"] = transcripts
        click.echo(json.dumps(out, indent=2))
        return
    _print_info(fs, infos)
    for name, t in transcripts.items():
        wer = "-" if t["wer"] is None else f"{100 * t['wer']:.2f} %"
        state = "complete" if t["complete"] else "incomplete"
        click.echo(
            f"transcripts {name} ({state}): by {t['asr_model']}, {t['failures']} failed, "
            f"WER {wer} against the gold transcripts ({t['words']:,} words)"
        )


def _transcript_fields(fs: Any, name: str) -> dict[str, Any]:
    """A transcript set's summary, with its WER when complete (None otherwise)."""
    from ser.corpus.wer import transcripts_wer

    attrs = fs.transcript_attrs(name)
    out = {
        "asr_model": attrs.get("asr_model"),
        "fingerprint": attrs["fingerprint"],
        "complete": bool(attrs.get("complete")),
        "failures": 0,
        "wer": None,
        "words": 0,
    }
    if out["complete"]:
        stored = fs.read_transcripts(name)
        out["failures"] = len(stored.failures)
        with contextlib.suppress(ValueError):  # no gold transcript has words
            wer = transcripts_wer(fs.manifest, stored)
            out.update(wer=wer.wer, words=wer.words)
    return out


def _print_info(fs: Any, infos: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{fs.path} ({fs.backend}): {len(fs.manifest)} utterances")
    for column in ("feature set", "level", "rows", "dim", "dtype", "size", "fingerprint"):
        table.add_column(column, justify="right" if column in ("rows", "dim", "size") else "left")
    table.add_column("state")
    table.add_column("failures", justify="right")
    for i in infos:
        state = "complete" if i.complete else f"incomplete ({i.staged_shards} shards staged)"
        sizes = (str(i.rows), str(i.dim), i.dtype, human_bytes(i.bytes))
        table.add_row(i.name, i.level, *sizes, i.fingerprint[:12], state, str(i.failures))
    console = Console(width=max(120, Console().width))
    console.print(table if infos else f"{fs.path}: {len(fs.manifest)} utterances, no features")


@store.command("verify")
@click.argument("path", type=STORE_PATH)
@click.option("--json", "as_json", is_flag=True, help="JSON with a checksum per feature set.")
@click.pass_context
def verify(ctx: click.Context, path: Path, as_json: bool) -> None:
    """Check the store at PATH (exit 1 if not healthy): reads every chunk, checking its
    checksum, and compares each feature set's content checksum with the one recorded when
    it was completed; offsets, NaN/Inf, completeness, failures. A damaged set is named with
    its rows and utterances and the command that re-extracts them (`ser extract ...
    --repair`). Sets written before checksums were recorded are said to have none.

    With --json each feature set gets its content checksum (sha256 of its data in manifest
    order) to compare stores across machines and backends, and the recorded one.
    """
    from ser.cache import FeatureStore

    fs = FeatureStore.open(path)
    report = fs.verify_report()
    repairs = {name: fs.repair_command(name) for name in report.damaged}
    if as_json:
        sets = {
            name: {"checksum": digest, "recorded_checksum": report.recorded.get(name)}
            | ({"repair": repairs[name]} if name in repairs else {})
            for name, digest in report.checksums.items()
        }
        out = {"path": str(fs.path), "healthy": report.healthy, "problems": report.problems}
        click.echo(json.dumps({**out, "feature_sets": sets}, indent=2))
    elif report.healthy:
        click.echo(f"ok: {fs.path}: {len(report.checksums)} feature sets, all healthy")
    else:
        click.echo(f"{fs.path}: {len(report.problems)} problems")
        for problem in report.problems:
            click.echo(f"  - {problem}")
        for name, command in repairs.items():
            click.echo(f"repair {name}: {command}")
    if report.unrecorded and not as_json:
        click.echo(
            f"note: no recorded checksum for {', '.join(report.unrecorded)} (written before "
            "ser recorded them): checked for layout and NaN/Inf only; re-extract them into "
            "a new store to have every chunk checked"
        )
    if not report.healthy:
        ctx.exit(1)


@store.command("init")
@click.argument("path", type=STORE_PATH)
@click.argument("corpus_root", type=click.Path(path_type=Path))
@corpus_option()
@audio_root_option()
@classes_option("Class set whose utterances the manifest holds.")
def init(
    path: Path, corpus_root: Path, corpus: str | None, audio_root: Path | None, classes: str
) -> None:
    """Create a store at PATH holding only the manifest of CORPUS_ROOT."""
    from ser.cache import FeatureStore, Manifest
    from ser.cache.formats import backend_for
    from ser.corpus.options import ReadOptions
    from ser.corpus.registry import read_corpus

    existed = backend_for(path.absolute(), writable=False).exists()
    kind, reading = read_corpus(corpus_root, corpus, classes, ReadOptions(audio_root))
    manifest = Manifest.from_utterances(reading.utterances, reading.root)
    root = reading.source or reading.root
    attrs = {"corpus_root": str(root), "classes": classes, **kind.attrs(reading)}
    fs = FeatureStore.create(path, manifest, attrs)
    verb = "exists already with this manifest:" if existed else "created"
    click.echo(f"{verb} {fs.path} ({fs.backend}): {len(manifest)} utterances, classes {classes}")
    if reading.problems:
        some = "; ".join(f"{p.utt_id}: {p.problem}" for p in reading.problems[:3])
        click.echo(f"{len(reading.problems)} corpus problems (see `ser corpus summary`): {some}")


@store.command("import")
@click.argument("path", type=STORE_PATH)
@click.argument("npz", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Feature set name, e.g. wav2vec2-large.L12.")
@click.option("--modality", type=click.Choice(["audio", "text"]), required=True)
@click.option("--level", type=click.Choice(["frame", "token", "utterance"]), required=True)
@click.option(
    "--dtype",
    type=click.Choice(["float16", "float32"]),
    default=None,
    help="Stored dtype [default: float16 if the file's arrays are, else float32].",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a set of that name: from other data, or from the same file again (what "
    "mends a damaged imported set).",
)
def import_(
    path: Path, npz: Path, name: str, modality: str, level: str, dtype: str | None, overwrite: bool
) -> None:
    """Add features computed elsewhere from NPZ (utterance id -> array) to the store."""
    from ser.cache import FeatureStore
    from ser.cache.importer import ImportConfig, import_npz

    config = ImportConfig(name, modality, level, dtype, overwrite)
    result = import_npz(FeatureStore.open(path, mode="a"), npz, config)
    if result.already:
        click.echo(f"{name}: {npz.name} was imported already (same file); nothing to do")
        return
    click.echo(f"imported {result.imported} utterances into {name} ({path})")
    if result.missing:
        some = ", ".join(result.missing[:3])
        click.echo(
            f"{len(result.missing)} manifest utterances are not in {npz.name}; recorded as "
            f"failures (e.g. {some})"
        )
    for utt_id, reason in result.rejected[:5]:
        click.echo(f"failed: {utt_id}: {reason}")


COMMANDS: list[click.Command] = [store]
