"""Receipts of finished extractions: re-running one is a no-op without torch or models.

`<store>.receipt.json` holds a key over everything that decides the outputs (options,
the corpus's text files and wav folders, model folders by name, size and mtime, and the
machine facts `auto` device and precision resolve from) and the run's summary. A key that
differs, or sets no longer complete, fall through to the full check.

It also keeps a copy of the store's attributes and of every complete set's (`backup`):
what `ser store repair` extracts again when the store itself cannot be read (an HDF5 file
cut short), or restores a set's attributes from when the store keeps no copy of them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ser.cache.atomic import atomic_write
from ser.cache.receipt_file import read_receipt, receipt_backup, receipt_path
from ser.cache.store import FeatureStore
from ser.corpus.options import NO_OPTIONS, ReadOptions
from ser.corpus.registry import CorpusKind, kind_of
from ser.errors import SerError, StoreError

__all__ = ["check_receipt", "receipt_backup", "receipt_path", "request_key", "write_receipt"]


def request_key(
    corpus_root: Path,
    options: Mapping[str, Any],
    models: Mapping[str, str],
    corpus: str | None = None,
    read_options: ReadOptions = NO_OPTIONS,
) -> str | None:
    """A key over the request and the files it reads (`models`: each kind's hub id or
    folder; `corpus`: the corpus kind, else guessed from the layout; `read_options` what
    it reads the corpus with); None when a model's files cannot be found cheaply or the
    corpus's kind is not clear."""
    signatures = {kind: _model_signature(model) for kind, model in models.items()}
    if any(sig is None for sig in signatures.values()):
        return None
    try:
        kind = kind_of(corpus_root, corpus)
    except SerError:
        return None
    parts = {
        "options": dict(options),
        "corpus": _corpus_signature(corpus_root, kind, read_options),
        "models": signatures,
        "machine": _machine_signature(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def write_receipt(
    store: Path,
    key: str | None,
    summary: Mapping[str, Any] | None,
    opened: FeatureStore | None = None,
) -> None:
    """Remember a finished request (atomically: a reader sees the old or the new one),
    with the `backup` of the store's attributes; None: the receipt's own, kept.
    ``opened``: the store, opened already (its manifest is not read again)."""
    if key is None or summary is None:
        old = read_receipt(store) or {}
        key, summary = old.get("key"), old.get("summary", {})
    record = {"key": key, "summary": dict(summary or {}), "backup": _backup(store, opened)}
    text = json.dumps(record, indent=1).encode("utf-8")
    atomic_write(receipt_path(store), lambda f: f.write(text), "the store's receipt")


def _backup(store: Path, opened: FeatureStore | None = None) -> dict[str, Any] | None:
    """The store's attributes and its complete sets' (a damaged one's left out)."""
    try:
        opened = opened or FeatureStore.open(store)
    except StoreError:
        return None
    sets = {}
    for name in opened.feature_sets():
        try:
            attrs = opened.info(name).attrs
        except StoreError:
            continue
        if attrs.get("complete"):
            sets[name] = attrs
    return {"store": opened.attrs, "sets": sets}


def check_receipt(store: Path, key: str) -> dict[str, Any] | None:
    """The remembered summary when `key` matches, no other process holds the store's lock
    and the store still holds every set complete with the same failures; else None."""
    try:
        receipt = json.loads(receipt_path(store).read_text())
        if receipt.get("key") != key:
            return None
        summary: dict[str, Any] = receipt["summary"]
        opened = FeatureStore.open(store)
        # Under the lock: a store another `ser extract` is writing is never answered
        # from here (the full path then refuses it with the holder's pid).
        with opened.lock():
            for entry in summary["sets"]:
                info = opened.info(entry["name"])
                if not info.complete or info.failures != entry["failed"]:
                    return None
            transcripts = summary.get("transcripts")  # --text-source asr
            if transcripts and not opened.transcript_attrs(transcripts["name"]).get("complete"):
                return None
    except (OSError, ValueError, KeyError, TypeError, StoreError):
        return None
    return summary


def _stats(paths: Iterable[Path], root: Path) -> list[tuple[str, int, int]]:
    stats = [(p, p.stat()) for p in sorted(paths)]
    # Relative to the root (a moved copy keeps its key); a file elsewhere (an audio root) as is.
    names = [str(p.relative_to(root) if p.is_relative_to(root) else p) for p, _ in stats]
    return [(name, st.st_size, st.st_mtime_ns) for name, (_, st) in zip(names, stats, strict=True)]


def _corpus_signature(
    root: Path, kind: CorpusKind, options: ReadOptions
) -> list[tuple[str, int, int]]:
    root = root.resolve()
    return _stats(kind.files(root, options), root)


def _model_signature(model: str) -> list[tuple[str, int, int]] | None:
    folder = Path(model)
    if folder.is_dir():
        return _stats((p for p in folder.resolve().rglob("*") if p.is_file()), folder.resolve())
    snapshot = _hub_snapshot(model)
    if snapshot is None:
        return None
    return [(model, 0, 0), *_stats((p for p in snapshot.rglob("*") if p.is_file()), snapshot)]


def _hub_snapshot(model_id: str) -> Path | None:
    """The cached snapshot folder of a hub id (huggingface_hub's cache layout), if any."""
    hub = (
        os.environ.get("HF_HUB_CACHE")
        or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
    )
    repo = Path(hub) / ("models--" + model_id.replace("/", "--"))
    try:
        commit = (repo / "refs" / "main").read_text().strip()
    except OSError:
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def _machine_signature() -> dict[str, Any]:
    # What "auto" device and precision resolve from, read without importing torch.
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    flags = sorted({f for f in ("avx512_bf16", "amx_bf16") if f in cpuinfo})
    return {
        "gpu": Path("/dev/nvidiactl").exists(),
        "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cpu_bf16": flags,
    }
