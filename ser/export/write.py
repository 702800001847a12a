"""`ser export RUN OUT`: the run's chosen members as a folder that stands alone.

The folder is written beside OUT under a temporary name and renamed into place when
whole: an export cut short (a full disk, a killed process) leaves no half folder that
`ser predict --model` would read. An existing OUT is replaced only with `overwrite`, and
only when it is an export (its config.json says so) or empty. A fine-tuned run exports
with its encoders one member, whose trained layers the encoder copy holds (`merged.py`).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import save_file

from ser import __version__
from ser.cache.atomic import writing
from ser.cache.lock import refuse_while_written
from ser.errors import ConfigError, ReportError
from ser.export.bundle import copy_encoders, encoder_entries, named_features, public_names
from ser.export.card import CardInputs, model_card
from ser.export.config import export_config
from ser.export.corpora import StoreFacts, store_facts
from ser.export.folder import (
    AGAIN,
    CARD,
    CONFIG,
    LIBRARY,
    MODEL,
    load_exported,
    member_tensors,
    readable,
)
from ser.export.members import choose_members, needed, validation_score
from ser.export.merged import check_finetuned, merge_encoders
from ser.export.onnx_export import check_onnx, export_onnx
from ser.export.reproduce import (
    extract_commands,
    placeholder_note,
    public,
    public_corpus,
    train_command,
    view_options,
)
from ser.extract.remake import corpus_of
from ser.runs.record import RECORD, RunRecord, read
from ser.train.checkpoint import (
    WEIGHTS_SHA256,
    Checkpoint,
    all_members,
    check_members,
    fold_key,
    load_checkpoint,
    recorded_members,
    weights_sha256,
)
from ser.train.folder import refuse_while_trained


@dataclass(frozen=True)
class ExportConfig:
    """What `ser export` is asked to do."""

    run: str
    out: str
    members: str = "all"  # best | all | final | K
    with_encoders: bool = False  # copy the encoders' files into the folder
    onnx: bool = False  # also the head (and with the encoders the speech encoder) as ONNX
    overwrite: bool = False


@dataclass(frozen=True)
class ExportResult:
    out: Path
    members: tuple[str, ...]
    files: dict[str, int]  # path in the folder -> bytes
    seconds: float
    notes: tuple[str, ...] = ()  # what did not export to ONNX, and why

    @property
    def size(self) -> int:
        return sum(self.files.values())


def export_run(
    config: ExportConfig, message: Callable[[str], None] = lambda _: None
) -> ExportResult:
    """Write the export (module docstring); `message` hears each step."""
    started = time.perf_counter()
    run_dir = Path(config.run)
    refuse_while_trained(run_dir)  # its checkpoints and run.json are not whole yet
    record = _record(run_dir)
    members = all_members(run_dir, recorded_members(record))
    keys = choose_members(record, members, config.members)
    check_members(run_dir, needed(members, config.members, keys), members, "--members")
    ckpts = [_with_validation(load_checkpoint(run_dir, k), record) for k in keys]
    out = _target(Path(config.out), config.overwrite)
    check_finetuned(ckpts, config.with_encoders, config.onnx)  # one member, no ONNX
    if config.onnx:  # refused before any work: the exporter's libraries, the family
        check_onnx(ckpts[0])
    store = store_facts(record.store)
    if record.store and not store.attrs:  # unread: written now (else moved or gone)
        refuse_while_written(Path(record.store).absolute())
    message(f"{len(ckpts)} member(s): {', '.join(keys)}")
    _remove_stale(out, message)
    staging = out.parent / f"{_staging_prefix(out)}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        notes = _write(staging, ckpts, record, store, config, run_dir, message)
        load_exported(staging, stand_ins=not config.with_encoders)  # the folder reads back
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = {
        str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()
    }
    return ExportResult(out, tuple(keys), files, time.perf_counter() - started, notes)


def _write(
    folder: Path,
    ckpts: list[Checkpoint],
    record: RunRecord,
    store: StoreFacts,
    config: ExportConfig,
    run_dir: Path,
    message: Callable[[str], None],
) -> tuple[str, ...]:
    names = public_names(ckpts[0].features)
    encoders = encoder_entries(ckpts[0].features, names)
    if config.with_encoders:
        message(f"copying {len(encoders)} encoder(s): {', '.join(encoders)}")
        copy_encoders(encoders, folder, names)
        if ckpts[0].meta.get("finetune"):
            message(f"writing {ckpts[0].key}'s fine-tuned layers into the encoder copied")
        ckpts = [merge_encoders(c, encoders, names, folder) for c in ckpts]
    # From here on the models are named as others read them (`bundle.py`).
    ckpts = [dataclasses.replace(c, features=named_features(c.features, names)) for c in ckpts]
    tensors = {f"{c.key}.{k}": v for c in ckpts for k, v in member_tensors(c).items()}
    meta = {"format": "pt", "library": LIBRARY, "ser_version": __version__}
    with writing(folder / MODEL, "the exported weights", AGAIN):
        save_file(tensors, str(folder / MODEL), metadata=meta)
    readable(folder / MODEL)
    data = {
        "corpus": store.kind,
        "classes": store.classes,
        "synthetic": store.synthetic,
        "longest_utterance": store.longest,
        "store": public(record.store),
    }
    exported = export_config(ckpts, record, encoders, data)
    exported[WEIGHTS_SHA256] = weights_sha256(folder / MODEL)  # checked as it is loaded
    notes: tuple[str, ...] = ()
    if config.onnx:
        message("exporting to ONNX")
        exported["onnx"], notes = export_onnx(ckpts, encoders, folder, config.with_encoders)
    _write_text(folder / CONFIG, json.dumps(exported, indent=1) + "\n", "the model's config")
    corpus = public_corpus(corpus_of(store.attrs, None) if store.attrs else None)
    where = str(public(record.config.get("store", "features.zarr")))
    folders = {k: e["weights_sha256"] for k, e in encoders.items() if e["source"] == "folder"}
    card = CardInputs(
        run_dir,
        record,
        exported,
        store,
        extract_commands(ckpts[0].features, corpus, where, view_options(record)),
        train_command(record),
        placeholder_note(corpus, folders),
        onnx="onnx" in exported,
    )
    _write_text(folder / CARD, model_card(card), "the model card")
    return notes


def _write_text(path: Path, text: str, what: str) -> None:
    with writing(path, what, AGAIN):
        path.write_text(text, encoding="utf-8")


def _record(run_dir: Path) -> RunRecord:
    try:
        return read(run_dir / RECORD)
    except (ReportError, OSError) as err:
        raise ConfigError(f"{run_dir} is not a run that can be exported: {err}") from None


def _with_validation(ckpt: Checkpoint, record: RunRecord) -> Checkpoint:
    """The checkpoint with its validation score in its meta (config.json lists it)."""
    entry = next((e for e in record.folds if fold_key(e.seed, e.fold) == ckpt.key), None)
    score = None if entry is None else validation_score(entry)
    return (
        dataclasses.replace(ckpt, meta={**ckpt.meta, "validation": score})
        if score is not None
        else ckpt
    )


def _staging_prefix(out: Path) -> str:
    """The name of an export's staging folder for `out`, less the writer's process id."""
    return f".{out.name}.partial-"


def _remove_stale(out: Path, message: Callable[[str], None]) -> None:
    """Remove the staging folders of exports to `out` that were killed (their process
    is gone): with the encoders copied one holds hundreds of MB. A live one is another
    export under way, left alone."""
    prefix = _staging_prefix(out)
    for path in sorted(out.parent.glob(f"{glob.escape(prefix)}*")):
        pid = path.name[len(prefix) :]
        if not pid.isdigit() or not path.is_dir() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            message(f"removed a staging folder left by a killed export: {path}")


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (one of another user's counts: not ours to judge)."""
    if pid == os.getpid():
        return False  # this process's own, from an earlier export it made
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _target(out: Path, overwrite: bool) -> Path:
    """OUT, checked: new, empty, or an export that `overwrite` replaces."""
    out = out.expanduser().resolve()
    if out.is_file():
        raise ConfigError(f"{out} is a file: give a folder to export into")
    if out.is_dir() and any(out.iterdir()):
        ours = _is_export(out / CONFIG)
        if not ours:
            raise ConfigError(f"{out} holds other files: export into a new or empty folder")
        if not overwrite:
            raise ConfigError(f"{out} holds an export already: give --overwrite to replace it")
    return out


def _is_export(path: Path) -> bool:
    try:
        config: object = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("library") == LIBRARY
