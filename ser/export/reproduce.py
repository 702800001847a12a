"""The `ser` commands that made a run, for its model card: `ser extract` of every feature
set it read (from the sets' provenance, as `ser store verify` words a repair; the
store's own corpus root, kind and class set) and `ser train` (from the run record's
resolved config: every option it records, so defaults that change later do not change
the run). Which ser made the features is said by each set's fingerprint: the same
command must give a set of that fingerprint.

Paths are this machine's: the commands name a folder by its last part (`public`), and
the card says what each such name stands for (`placeholder_note`).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ser.extract.remake import CORPUS_PLACEHOLDER, Corpus, remake
from ser.extract.views import view_of_suffix
from ser.runs.record import RunRecord
from ser.train.option_table import MODEL, RUN, train_options

#: `ser train` options that say how or where a run ran, not what it is: left out.
HOW = ("device", "threads", "members_at_once", "step", "processes", "overwrite", "corpus_root")


T = TypeVar("T")


def extract_commands(
    features: Mapping[str, Mapping[str, Any]],
    corpus: Corpus | None,
    store: str,
    augment: Sequence[str] = (),
) -> list[str]:
    """One `ser extract` per distinct set of flags (a layered input's sets are one); an
    audio set's with `augment` (`view_options`: the views a `--views` run read)."""
    corpus = corpus or Corpus(None, None, None, "4")
    commands: dict[str, None] = {}
    for name, info in features.items():
        attrs = info["attrs"]
        made = remake(name, attrs, list(features))
        flags = None if made is None else made.flags()
        if flags is None:
            commands[
                f"# {name}: made by {attrs.get('extractor')}, no `ser extract` flags make it"
            ] = None
            continue
        args = ["extract", *corpus.arguments(), "--store", store, "--classes", corpus.classes]
        views = augment if attrs.get("modality") == "audio" else ()
        commands[shlex.join(["ser", *args, *flags, *views])] = None
    return list(commands)


def view_options(record: RunRecord) -> list[str]:
    """The `--augment` options that make the view sets a `--views` run read, from their
    names in its record's fingerprints, beside their clean sets' (`<set>.speed0.9`)."""
    names = set(record.fingerprints)
    found = {
        view
        for name in names
        for clean in names
        if name.startswith(f"{clean}.")
        and (view := view_of_suffix(name.removeprefix(f"{clean}."))) is not None
    }
    ordered = sorted(found, key=lambda v: (v.kind, v.value))
    return [word for view in ordered for word in ("--augment", view.spec)]


def train_command(record: RunRecord) -> str:
    """`ser train` with every option the record's config holds (module docstring)."""
    config = record.config
    family = str(config.get("family", ""))
    words = ["ser", "train"]
    for name, option in train_options().items():
        if name in HOW or option.section not in (RUN, MODEL, family) or name not in config:
            continue
        value = public(config[name])
        if name == "seeds":
            value = len(value) if isinstance(value, list) else value
        words += _words(name, option.kind, value)
    if record.final:
        words.append("--final")
    return shlex.join(words)


def _words(name: str, kind: object, value: object) -> list[str]:
    flag = "--" + name.replace("_", "-")
    if value is None:
        return []
    if kind is bool:
        return [flag if value else f"--no-{flag[2:]}"]
    if isinstance(value, list | tuple):
        return [flag, ",".join(str(v) for v in value)]
    return [flag, str(value)]


def public(value: T) -> T | str:
    """An absolute path as its last part (a store, a corpus root); anything else as is."""
    if isinstance(value, str) and Path(value).expanduser().is_absolute():
        return Path(value).name or value
    return value


def public_corpus(corpus: Corpus | None) -> Corpus | None:
    """The corpus with its folders named by their last parts (`public`)."""
    if corpus is None:
        return None
    return dataclasses.replace(
        corpus, root=public(corpus.root), audio_root=public(corpus.audio_root)
    )


def placeholder_note(corpus: Corpus | None, folders: Mapping[str, str] | None = None) -> str:
    """What the commands' names stand for: the corpus root (a placeholder where the store
    did not record it) and each local model folder (`folders`: name -> weights sha256)."""
    said = []
    if corpus is not None and corpus.root:
        said.append(f"{public(corpus.root)}: your copy of the corpus (its folder's name here)")
    else:
        said.append(
            f"{CORPUS_PLACEHOLDER}: your copy of the corpus (the store did not record its root)"
        )
    for name, checksum in (folders or {}).items():
        said.append(
            f"{name}: the folder of that local model (weights sha256 {str(checksum)[:12]}; "
            "an export with its encoders holds a copy in encoders/)"
        )
    return "; ".join(said) + "."
