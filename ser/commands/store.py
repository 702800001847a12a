"""`ser store info|verify|repair|rechunk|init|import`: look into, check, mend and fill feature
stores. A damaged part of a store (a set, the manifest, its own metadata) is named by info
and verify, never a traceback, and never keeps the others from being shown."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ser.commands.options import audio_root_option, classes_option, corpus_option
from ser.runtime.units import human_bytes

if TYPE_CHECKING:  # imported where each command runs: `ser --help` stays quick
    from ser.cache import FeatureStore
    from ser.cache.backend import DamagedMetadata, StoreUnreadable
    from ser.cache.store_types import FeatureSetInfo, VerifyReport
    from ser.extract.remake import Corpus

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
    from ser.cache.backend import UnreadablePart
    from ser.errors import StoreError

    fs = FeatureStore.open(path)
    infos, damaged, unreadable = [], {}, {}
    for name in fs.feature_sets():
        try:
            infos.append(fs.info(name))
        except UnreadablePart as error:  # its permissions: nothing to repair
            unreadable[name] = str(error)
        except StoreError as error:
            damaged[name] = str(error)
    transcripts = {}
    for name in fs.transcript_sets():
        try:
            transcripts[name] = _transcript_fields(fs, name)
        except StoreError as error:
            damaged[f"transcripts/{name}"] = str(error)
    store_damage = [str(e) for e in (fs.damaged_root, fs.manifest_damage) if e is not None]
    if as_json:
        keys = ("level", "rows", "dim", "dtype", "bytes", "fingerprint", "complete", "failures")
        sets: dict[str, Any] = {i.name: {key: getattr(i, key) for key in keys} for i in infos}
        for i in infos:  # a view set (`ser extract --augment`): its clean set and its view
            sets[i.name]["precision"] = i.attrs.get("precision")  # null: not recorded
            sets[i.name].update({k: i.attrs[k] for k in ("view_of", "view") if k in i.attrs})
        sets.update({name: {"damaged": why} for name, why in damaged.items()})
        sets.update({name: {"unreadable": why} for name, why in unreadable.items()})
        utterances = None if fs.manifest_damage else len(fs.manifest)
        out: dict[str, Any] = {"utterances": utterances, "feature_sets": sets}
        if transcripts:
            out["transcript_sets"] = transcripts
        if store_damage:
            out["damaged"] = store_damage
        click.echo(json.dumps(out, indent=2))
        return
    _print_info(fs, infos, damaged, unreadable)
    for i in infos:
        if "view_of" in i.attrs:
            click.echo(f"{i.name}: view of {i.attrs['view_of']} ({i.attrs.get('view')})")
    for line in store_damage + list(damaged.values()):
        click.echo(f"damaged: {line}")
    for line in unreadable.values():
        click.echo(f"unreadable: {line}")
    if store_damage or damaged:
        click.echo(f"`ser store verify {fs.path}` lists every damaged piece and its repair")
    for name, t in transcripts.items():
        wer = "-" if t["wer"] is None else f"{100 * t['wer']:.2f} %"
        state = "complete" if t["complete"] else "incomplete"
        click.echo(
            f"transcripts {name} ({state}): by {t['asr_model']}, {t['failures']} failed, "
            f"WER {wer} against the gold transcripts ({t['words']:,} words)"
        )


def _transcript_fields(fs: FeatureStore, name: str) -> dict[str, Any]:
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


def _print_info(
    fs: FeatureStore,
    infos: list[FeatureSetInfo],
    damaged: dict[str, str],
    unreadable: dict[str, str],
) -> None:
    """The table of the sets: "dtype" as stored, "computed at" the precision the set's
    model ran at (recorded by `ser extract`; unknown where the set records none)."""
    from rich.console import Console
    from rich.table import Table

    utterances = "damaged manifest" if fs.manifest_damage else f"{len(fs.manifest)} utterances"
    table = Table(title=f"{fs.path} ({fs.backend}): {utterances}")
    columns = ("feature set", "level", "rows", "dim", "dtype", "computed at", "size")
    for column in (*columns, "fingerprint"):
        table.add_column(column, justify="right" if column in ("rows", "dim", "size") else "left")
    table.add_column("state")
    table.add_column("failures", justify="right")
    for i in infos:
        state = "complete" if i.complete else f"incomplete ({i.staged_shards} shards staged)"
        if not i.complete and not i.staged_shards and i.rows:  # an import stopped part-way
            state = f"incomplete ({i.rows:,} rows written)"
        computed = str(i.attrs.get("precision") or "unknown")
        sizes = (str(i.rows), str(i.dim), i.dtype, computed, human_bytes(i.bytes))
        table.add_row(i.name, i.level, *sizes, i.fingerprint[:12], state, str(i.failures))
    said = {**dict.fromkeys(damaged, "damaged"), **dict.fromkeys(unreadable, "unreadable")}
    for name, state in said.items():
        if not name.startswith("transcripts/"):
            table.add_row(name, *["-"] * 7, f"{state} (below)", "-")
    console = Console(width=max(136, Console().width))
    shown = infos or any(not n.startswith("transcripts/") for n in said)
    console.print(table if shown else f"{fs.path}: {utterances}, no features")


QUIET = click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="No progress (a bar on a terminal, else a line at most every 30 s).",
)


@store.command("verify")
@click.argument("path", type=STORE_PATH)
@click.option("--json", "as_json", is_flag=True, help="JSON with a checksum per feature set.")
@QUIET
@click.pass_context
def verify(ctx: click.Context, path: Path, as_json: bool, quiet: bool) -> None:
    """Check the store at PATH (exit 1 if not healthy): reads every chunk, checking its
    checksum, and compares each feature set's content checksum with the one recorded when
    it was completed; every piece of metadata; offsets, NaN/Inf, completeness, failures.
    Every damaged piece is named (a set with its rows and utterances, the manifest, the
    file) with the command that repairs it: `ser extract ... --repair` with the options that
    made the set, or `ser store repair PATH`, which repairs everything. A view set
    (`--augment`) made from a clean set since extracted again with other settings is stale:
    named with the `ser extract ... --overwrite` that makes it again. Sets written before
    checksums were recorded are said to have none.

    With --json each feature set gets its content checksum (sha256 of its data in manifest
    order) to compare stores across machines and backends, and the recorded one.
    Progress (bytes read, their rate, the time left) goes to stderr.
    """
    from ser.cache import FeatureStore
    from ser.cache.backend import DamagedMetadata, StoreUnreadable
    from ser.cache.lock import refuse_while_written
    from ser.cache.receipt_file import receipt_path
    from ser.runtime.progress import log_console, task_bar

    refuse_while_written(path.absolute())  # what it would find is the writer's work under way
    try:
        fs = FeatureStore.open(path)
    except (StoreUnreadable, DamagedMetadata) as error:  # nothing else can be read
        _unopenable(ctx, path, error, as_json)
        return
    with task_bar(log_console(quiet), not quiet) as bar:
        report = fs.verify_report(bar)
    repairs = _repairs(fs, report) if not report.healthy else {}
    remakes = _remakes(fs, report)
    if as_json:
        sets = {
            name: {"checksum": digest, "recorded_checksum": report.recorded.get(name)}
            | ({"repair": repairs[name]} if name in repairs else {})
            | ({"remake": remakes[name]} if name in remakes else {})
            for name, digest in report.checksums.items()
        }
        parts = {
            part or "store": {"problems": said, "repair": repairs[part]}
            for part, said in report.parts.items()
        }
        out = {"path": str(fs.path), "healthy": report.healthy, "problems": report.problems}
        receipt = receipt_path(fs.path)
        out["receipt"] = str(receipt) if receipt.is_file() else None  # null: sets unlisted
        click.echo(json.dumps({**out, "feature_sets": sets, "parts": parts}, indent=2))
    elif report.healthy:
        click.echo(f"ok: {fs.path}: {len(report.checksums)} feature sets, all healthy")
    else:
        click.echo(f"{fs.path}: {len(report.problems)} problems")
        for problem in report.problems:
            click.echo(f"  - {problem}")
        for name, command in repairs.items():
            click.echo(f"repair {name or 'store'}: {command}")
        for name, command in remakes.items():
            click.echo(f"remake {name}: {command}")
        if len(repairs) > 1:
            click.echo(f"repair everything: {_everything(fs)}")
        moved = _corpus(fs).moved_note()
        if moved:
            click.echo(f"note: {moved}: put its new place for CORPUS_ROOT above")
    if not as_json and not receipt_path(fs.path).is_file():
        click.echo(f"note: {_no_receipt(fs.path)}")
    if report.unrecorded and not as_json:
        click.echo(
            f"note: no recorded checksum for {', '.join(report.unrecorded)} (written before "
            "ser recorded them): checked for layout and NaN/Inf only; re-extract them into "
            "a new store to have every chunk checked"
        )
    if not report.healthy:
        ctx.exit(1)


def _no_receipt(store: Path) -> str:
    """What verify cannot check without the store's receipt, and how to give it one."""
    from ser.cache.receipt_file import receipt_path

    receipt = receipt_path(store)
    return (
        f"no receipt beside the store ({receipt.name}), so a set deleted from it cannot be "
        f"found: a copy of a store needs its receipt copied beside it too (cp "
        f"SOURCE/{receipt.name} {receipt.parent}/), or run the `ser extract` that made the "
        "store on it, which writes one (and extracts a set that is gone)"
    )


def _repairs(fs: FeatureStore, report: VerifyReport) -> dict[str, str]:
    """The command that repairs each damaged piece: a set by `ser extract ... --repair`
    (`ser.extract.remake`; one not finished: resumed by it), the store's own parts by `ser
    store repair`."""
    from ser.extract.remake import repair_command, store_repair

    unfinished = [  # resumed; a set this user may not read is no repair's
        n for n in fs.feature_sets() if n not in report.recorded and n not in report.unreadable
    ]
    found = {name: repair_command(fs, name) for name in [*report.damaged, *unfinished]}
    return found | {part: store_repair(fs.path, _corpus(fs)) for part in report.parts}


def _remakes(fs: FeatureStore, report: VerifyReport) -> dict[str, str]:
    """The command that makes each stale view set again from its clean set as it is now
    (`ser extract ... --augment VIEW --overwrite`)."""
    from ser.extract.remake import view_command

    return {name: view_command(fs, name) for name in report.stale}


def _corpus(fs: FeatureStore) -> Corpus:
    from ser.extract.remake import store_corpus

    return store_corpus(fs)


def _everything(fs: FeatureStore) -> str:
    from ser.extract.remake import store_repair

    return store_repair(fs.path, _corpus(fs))


def _unopenable(
    ctx: click.Context, path: Path, error: StoreUnreadable | DamagedMetadata, as_json: bool
) -> None:
    """A store verify cannot open (an HDF5 file cut short, its own metadata and the
    copy lost): what `ser store repair` makes of it, from the store's receipt."""
    from ser.cache.backend import DamagedMetadata
    from ser.cache.receipts import receipt_backup, receipt_path
    from ser.extract.remake import corpus_of, store_repair

    backup = receipt_backup(path.absolute())
    where = error.file if isinstance(error, DamagedMetadata) else error.store
    problem = f"{where} {error.reason}"
    if backup is not None:
        repair = store_repair(path.absolute(), corpus_of(backup["store"], None).here())
    else:
        repair = None
        problem += f"; no receipt ({receipt_path(path.absolute())}) records what it held"
    if as_json:
        out = {"path": str(path.absolute()), "healthy": False, "problems": [problem]}
        click.echo(json.dumps({**out, "repair": repair}, indent=2))
    else:
        click.echo(f"{path.absolute()}: 1 problem\n  - {problem}")
        click.echo(
            f"repair store: {repair}"
            if repair
            else "cannot be repaired: extract its sets again into a new store"
        )
    ctx.exit(1)


@store.command("repair")
@click.argument("path", type=STORE_PATH)
@click.argument("corpus_root", required=False, type=click.Path(path_type=Path))
@QUIET
@click.pass_context
def repair(ctx: click.Context, path: Path, corpus_root: Path | None, quiet: bool) -> None:
    """Repair everything `ser store verify` finds damaged in the store at PATH, then check
    it again (exit 1 if still not healthy): metadata written anew from the store's own
    copies, a manifest rebuilt from the corpus (where it agrees with what is left of it),
    damaged rows re-extracted with the options that made their set, a store file that
    cannot be opened at all set aside and its sets extracted again from its receipt.
    CORPUS_ROOT: the corpus, where the store does not record it.
    """
    from ser.extract.store_repair import repair_store
    from ser.runtime.progress import log_console

    result = repair_store(path, corpus_root, log_console(quiet=quiet))
    for line in result.done:
        click.echo(line)
    if result.problems:
        click.echo(f"{path}: still {len(result.problems)} problems")
        for problem in result.problems:
            click.echo(f"  - {problem}")
        for name, command in result.rebuild.items():  # what repair could not do, said once
            click.echo(f"rebuild {name}: {command}")
        ctx.exit(1)
    said = "repaired" if result.done else "nothing to repair"
    click.echo(f"ok: {path.absolute()}: {said}, all healthy")


@store.command("rechunk")
@click.argument("path", type=STORE_PATH)
@click.argument("name")
@click.option(
    "--chunk-size",
    required=True,
    help="About this many bytes a chunk, in whole rows (e.g. 512KiB, 16MiB): what a "
    "streamed read takes at a time (`ser train --memory-budget`).",
)
@QUIET
def rechunk(path: Path, name: str, chunk_size: str, quiet: bool) -> None:
    """Write feature set NAME of the store at PATH anew in chunks of about --chunk-size:
    the same rows, offsets and fingerprint (runs resume on it), the old array kept until
    the new one is whole. Small chunks let a set stream under a small memory budget;
    large ones mean fewer reads."""
    import numpy as np

    from ser.cache import FeatureStore
    from ser.runtime.progress import log_console, task_bar
    from ser.runtime.units import parse_size

    try:
        size = parse_size(chunk_size)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--chunk-size") from None
    fs = FeatureStore.open(path, mode="a")
    with fs.lock(), task_bar(log_console(quiet), not quiet) as bar:
        before, after = fs.rechunk(name, size, bar)
    described = fs.info(name)
    row_bytes = described.dim * np.dtype(described.dtype).itemsize
    if before == after:
        click.echo(f"{name}: already in chunks of {_chunk_text(after, row_bytes)}; nothing to do")
        return
    click.echo(
        f"{name}: rechunked from {_chunk_text(before, row_bytes)} to "
        f"{_chunk_text(after, row_bytes)} ({fs.path})"
    )
    if slow := _slow_chunks(after, described.rows, row_bytes):
        click.echo(f"note: {name}: {slow}", err=True)


def _slow_chunks(rows: int, held: int, row_bytes: int) -> str:
    """Why chunks of `rows` rows of a set of `held` are too small to read fast ("": they
    are not, or the set is one chunk anyway)."""
    from ser.cache import store as store_module

    size = rows * row_bytes
    if size >= store_module.FAST_CHUNK_BYTES or rows >= held:
        return ""
    least = human_bytes(store_module.MIN_CHUNK_BYTES)
    return (
        f"{-(-held // rows):,} chunks of {human_bytes(size)} are too small to read fast "
        "(each costs about 0.5 ms besides its bytes: a streamed step reads for seconds); "
        f"chunks of {least} or more read at disk speed (--chunk-size {least.replace(' ', '')})"
    )


def _chunk_text(rows: int, row_bytes: int) -> str:
    return f"{rows:,} rows ({human_bytes(rows * row_bytes)}) a chunk"


@store.command("init")
@click.argument("path", type=STORE_PATH)
@click.argument("corpus_root", type=click.Path(path_type=Path))
@corpus_option()
@audio_root_option()
@classes_option("Class set whose utterances the manifest holds.")
@QUIET
def init(
    path: Path,
    corpus_root: Path,
    corpus: str | None,
    audio_root: Path | None,
    classes: str,
    quiet: bool,
) -> None:
    """Create a store at PATH holding only the manifest of CORPUS_ROOT, and each
    utterance's audio print (a bar of utterances on stderr while they are made)."""
    from ser.cache import FeatureStore, Manifest
    from ser.cache.formats import backend_for
    from ser.corpus.options import ReadOptions
    from ser.corpus.registry import read_corpus
    from ser.extract.audio_prints import add_prints
    from ser.runtime.progress import log_console, read_progress, working

    existed = backend_for(path.absolute(), writable=False).exists()
    err = log_console(quiet)
    started = time.perf_counter()
    err.print(f"reading the corpus at {corpus_root}", highlight=False, markup=False)
    with read_progress(err, not quiet) as told:
        kind, reading = read_corpus(corpus_root, corpus, classes, ReadOptions(audio_root), told)
    err.print(
        f"read {len(reading.utterances):,} utterances ({kind.name}) in "
        f"{time.perf_counter() - started:.1f} s",
        highlight=False,
    )
    with working(err, "making the manifest"):
        manifest = Manifest.from_utterances(reading.utterances, reading.root)
    root = reading.source or reading.root
    attrs = {"corpus_root": str(root), "classes": classes, **kind.attrs(reading)}
    fs = FeatureStore.create(path, manifest, attrs)
    verb = "exists already with this manifest:" if existed else "created"
    click.echo(f"{verb} {fs.path} ({fs.backend}): {len(manifest)} utterances, classes {classes}")
    with fs.lock():  # its audio prints, as `ser extract` makes them (where it has none)
        add_prints(fs, reading.root, err)
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
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def import_(
    ctx: click.Context,
    path: Path,
    npz: Path,
    name: str,
    modality: str,
    level: str,
    dtype: str | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Add features computed elsewhere from NPZ (utterance id -> array) to the store.

    Each row is written once, straight into the store, and the store's receipt is written
    beside it. An import stopped part-way (Ctrl-C, a kill, a full disk) keeps the rows it
    wrote: the same command goes on from them.
    """
    from ser.cache import FeatureStore
    from ser.cache.importer import ImportConfig, import_npz
    from ser.commands.options import command_line, interrupted
    from ser.extract.progress import progress_bar
    from ser.runtime.progress import log_console

    config = ImportConfig(name, modality, level, dtype, overwrite)
    store = FeatureStore.open(path, mode="a")
    try:
        with progress_bar(log_console(quiet), enabled=not quiet) as bar:
            result = import_npz(store, npz, config, bar)
    except KeyboardInterrupt:
        again = command_line(ctx, leave_out=("overwrite",))
        interrupted(f"interrupted: the rows imported so far are kept; `{again}` goes on from them")
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
