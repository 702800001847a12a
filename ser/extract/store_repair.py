"""`ser store repair`: everything of a damaged store that can be mended, then checked.

In order, each step on what the one before left: the metadata the store's own copies (or
its receipt's) restore (`FeatureStore.mend`); a damaged manifest rebuilt from the corpus,
only where it agrees with what is left of the old one (`FeatureStore.rebuild_manifest`);
then every set `verify` still finds damaged, re-extracted by `ser extract --repair` with the
options that made it (`remake.py`): its damaged utterances written back over their rows,
or (offsets or failures lost) the whole set. Nothing good is ever deleted: a store that
cannot be opened at all (an HDF5 file cut short) is set aside under another name and its
sets extracted again from its receipt's copy of their attributes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from ser.cache import FeatureStore, Manifest
from ser.cache.backend import DamagedMetadata, StoreUnreadable
from ser.cache.lock import store_lock, try_lock
from ser.cache.receipt_file import receipt_sets
from ser.cache.receipts import receipt_backup, receipt_path, write_receipt
from ser.cache.store_types import Damage, VerifyReport
from ser.cache.verify import RECORDED
from ser.corpus.options import ReadOptions
from ser.corpus.registry import read_corpus, store_kind
from ser.errors import StoreError, StoreLocked
from ser.extract.remake import (
    Corpus,
    Remake,
    corpus_of,
    rebuild_command,
    remake,
    store_corpus,
    view_command,
)
from ser.extract.run import extract_features
from ser.extract.store_setup import manifests
from ser.runtime.progress import log_console, read_progress, task_bar


@dataclass
class Repaired:
    """What `repair_store` did (a line each) and what `verify` finds after (empty:
    healthy)."""

    done: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Each set still damaged: the `ser extract ... --overwrite` that makes it again whole.
    rebuild: dict[str, str] = field(default_factory=dict)


def repair_store(
    path: Path, corpus_root: Path | None = None, console: Console | None = None
) -> Repaired:
    """Mend the store at `path` (`corpus_root`: where the store records none)."""
    console = console or log_console(quiet=True)
    try:
        store = FeatureStore.open(path, mode="a")
    except StoreUnreadable as error:
        return _extract_again(path, error, corpus_root, console)
    except DamagedMetadata as error:  # its own metadata, and the manifest's copy, lost
        FeatureStore.restore_root(path, _backup(path, error)["store"])
        store = FeatureStore.open(path, mode="a")
    out = Repaired()
    with store.lock():
        done, _ = store.mend((receipt_backup(store.path) or {}).get("sets", {}))
        out.done += [f"restored {line}" for line in done]
        if store.manifest_damage is not None:
            root = _root(store.path, _corpus(store), corpus_root)
            store.rebuild_manifest(_candidates(root, store.attrs, console))
            out.done.append(f"rebuilt the manifest from {root} ({len(store.manifest)} utterances)")
    out.done += _reextract(store, corpus_root, console)
    after = FeatureStore.open(store.path)
    report = _verified(after, console)
    out.problems = report.problems
    found = {name: rebuild_command(after, name) for name in report.damaged}
    out.rebuild = {name: command for name, command in found.items() if command}
    out.rebuild |= {name: view_command(after, name) for name in report.stale}  # not damage
    return out


def _reextract(store: FeatureStore, corpus_root: Path | None, console: Console) -> list[str]:
    """Every set `_to_extract` finds, extracted with --repair; what each extraction did."""
    corpus = _corpus(store)
    todo, lost = _to_extract(store, console)
    if not todo:
        return []
    root = _root(store.path, corpus, corpus_root)  # before anything is deleted
    done = []
    for name in lost:
        store.delete_feature_set(name)
        done.append(
            f"{name}: deleted, to be extracted again as the store's receipt records it (its "
            "metadata is lost and its data does not bear out the receipt's copy)"
        )
    for made in todo:
        config = made.config(corpus, repair=True, progress=not console.quiet)
        result = extract_features(root, store.path, config, console)
        done += [f"repaired {line}" for line in result.repaired]
        whole = "(unfinished, gone, or where its rows are was lost)"
        done += [f"{name}: extracted whole {whole}" for name in result.extracted]
        if result.transcripts is not None and result.transcripts.transcribed:
            done.append(f"{result.transcripts.name}: transcribed again")
    return done


def _to_extract(store: FeatureStore, console: Console) -> tuple[list[Remake], list[str]]:
    """The sets a repairing extraction mends, with how each was made: each damaged one
    ser extracted (one whose attributes stay lost is left for `verify` to name, unless the
    store's receipt keeps them: then it is to be deleted first, the second list), each one
    not finished (resumed), and for damaged transcripts the first text set made of them."""
    report = _verified(store, console)
    sets = store.feature_sets()
    made = {name: _remade(store, name, sets) for name in {*sets, *report.damaged}}
    found = [n for n, damage in sorted(report.damaged.items()) if not damage.metadata]
    found += [n for n in sets if n not in found and not _complete(store, n)]
    lost = [n for n in _unrestored(store, report.damaged) if made[n] is not None]
    found += lost
    for part in report.parts:
        name = part.removeprefix("transcripts/")
        users = [n for n in sets if (store.recorded_attrs(n) or {}).get("transcripts") == name]
        if part != name and users and not set(users) & set(found):
            found.append(users[0])
    return [one for name in found if (one := made[name]) is not None], lost


def _unrestored(store: FeatureStore, damaged: Mapping[str, Damage]) -> list[str]:
    """The sets whose metadata no copy restored (`FeatureStore.mend` has run) that the
    store's receipt keeps the attributes of: only extracting them again mends them."""
    copies = receipt_sets(store.path)
    return [n for n, damage in sorted(damaged.items()) if damage.metadata and n in copies]


def _complete(store: FeatureStore, name: str) -> bool:
    return bool((store.recorded_attrs(name) or {"complete": True}).get("complete"))


def _remade(store: FeatureStore, name: str, sets: list[str]) -> Remake | None:
    """How set ``name`` was made: as it records it, else as the store's receipt does (a set
    gone from the store, or whose attributes are lost)."""
    attrs = store.recorded_attrs(name) if name in sets else None
    attrs = attrs or receipt_sets(store.path).get(name)
    return None if attrs is None else remake(name, attrs, sets)


def _corpus(store: FeatureStore) -> Corpus:
    return store_corpus(store)


def _root(store: Path, corpus: Corpus, given: Path | None) -> str:
    if given is not None:
        return str(given)
    moved = corpus.moved_note()
    if moved is not None:
        raise StoreError(
            f"{store}: {moved}: give its new place, `ser store repair {store} CORPUS_ROOT`"
        )
    if corpus.root is None:
        raise StoreError(
            f"{store}: the store does not record the corpus it was extracted from: "
            f"give it, `ser store repair {store} CORPUS_ROOT`"
        )
    return corpus.root


def _candidates(root: str, attrs: dict[str, Any], console: Console) -> Iterator[Manifest]:
    """The manifests the corpus gives with the store's class set, or (a store that does
    not record it) with each of its kind's, fewest codes first; each read's progress on
    `console`."""
    corpus = corpus_of(attrs, None)
    options = ReadOptions(None if corpus.audio_root is None else Path(corpus.audio_root))
    kind = store_kind(attrs)
    sets = kind.sets(())
    names = sorted(sets, key=lambda n: len(sets[n].mapping))
    for name in [corpus.classes] if "classes" in attrs else names:
        with read_progress(console, not console.quiet) as told:
            reading = read_corpus(root, kind.name, name, options, told)[1]
        yield from manifests(reading)


def _backup(path: Path, error: StoreError) -> dict:
    """The receipt's copy of the store's attributes and sets; StoreError without one."""
    backup = receipt_backup(path)
    if backup is None:
        raise StoreError(
            f"{error}; and no receipt ({receipt_path(path)}) records what the store held: "
            "extract its sets again into a new store"
        ) from None
    return backup


def _extract_again(
    path: Path, error: StoreUnreadable, corpus_root: Path | None, console: Console
) -> Repaired:
    """A store that cannot be opened: set aside, and its sets (as its receipt records
    them) extracted again at its path."""
    backup = _backup(path, error)
    corpus = corpus_of(backup["store"], None).here()
    root = _root(path, corpus, corpus_root)
    next(_candidates(root, backup["store"], console))  # the corpus is there: else nothing is moved
    made = [remake(name, attrs, list(backup["sets"])) for name, attrs in backup["sets"].items()]
    with try_lock(store_lock(path)) as holder:
        if holder is not None:
            raise StoreLocked(f"{path} is in use by another ser process; wait for it to finish")
        aside = _aside(path)
        os.rename(path, aside)
    out = Repaired([f"set the unreadable store aside as {aside} (kept, not deleted)"])
    for one in made:
        if one is None:
            continue
        extract_features(root, path, one.config(corpus, progress=not console.quiet), console)
    store = FeatureStore.open(path)
    for name, attrs in sorted(backup["sets"].items()):
        if name not in store.feature_sets():
            out.done.append(f"{name}: not extracted again (no extractor made it: import it again)")
            continue
        same = store.info(name).attrs.get(RECORDED) == attrs.get(RECORDED)
        said = "the bytes it had" if same else "other bytes than it had (another device?)"
        out.done.append(f"{name}: extracted again, {said}")
    write_receipt(path, None, None)
    out.problems = _verified(store, console).problems
    return out


def _verified(store: FeatureStore, console: Console) -> VerifyReport:
    """`store`'s verify report, its bytes read shown on `console` (quiet: nothing)."""
    with task_bar(console, not console.quiet) as bar:
        return store.verify_report(bar)


def _aside(path: Path) -> Path:
    """``features.damaged.h5``, numbered if taken."""
    for n in range(1, 1000):
        tag = ".damaged" if n == 1 else f".damaged-{n}"
        aside = path.with_name(f"{path.stem}{tag}{path.suffix}")
        if not aside.exists():
            return aside
    raise StoreError(f"{path}: too many damaged copies beside it; move some away")
