"""How a feature set was made, as `ser extract` takes it again: the command `ser store
verify` prints to repair a set, and the `ExtractConfig` `ser store repair` runs.

A complete set records its provenance (the extractor, its model, layer, pooling,
precision, the transcripts it read) and the store its corpus (its root, kind, audio root
and class set: `corpus_of`); `remake` turns them back into the extractor's options
(`KindOptions.from_attrs`, as `ser predict` does) and those into flags. Options no flag
sets (the model's own defaults, such as a text model's token limit) are what `ser extract`
gives by itself; a set whose fixed options it would not give (a `logmel` of 40 bands made
through the API) has no command, only `ser store repair`, which passes every option.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser.cache import FeatureStore
from ser.cache.fingerprint import differences, identity
from ser.cache.model_names import set_stem
from ser.cache.receipt_file import receipt_sets
from ser.corpus.registry import store_kind
from ser.errors import ConfigError
from ser.extract.config import ExtractConfig
from ser.extract.registry import KINDS, Flag, Kind, build_extractor, flags
from ser.extract.views import clean_of, view_spec_of

CORPUS_PLACEHOLDER = "CORPUS_ROOT"  # `ser extract`'s argument, where the store lacks it
# A set whose attributes have no copy left anywhere (a store written before sets kept one).
LOST = (
    "no copy of its attributes is left to restore them from: run the `ser extract` command "
    "that made it again, with --overwrite"
)
# Provenance that names the code that made a set, not how: a newer ser, transformers or
# openSMILE repairs a set all the same (its bytes are checked against the recorded ones).
_VERSIONS = ("ser_version", "transformers_version", "opensmile_version")


@dataclass(frozen=True)
class Corpus:
    """The corpus a store was extracted from, as `ser extract` takes it."""

    root: str | None  # None: the store does not record it
    kind: str | None
    audio_root: str | None
    classes: str
    moved: str | None = None  # the root recorded, where it is no longer (`here`)

    def here(self) -> Corpus:
        """This corpus, its root unknown (`moved`) where the recorded one is gone: a
        command then asks for CORPUS_ROOT rather than name a folder that is not there."""
        if self.root is None or Path(self.root).exists():
            return self
        return dataclasses.replace(self, root=None, moved=self.root)

    def moved_note(self) -> str | None:
        """What a command that needs the corpus says of a recorded root that is gone."""
        if self.moved is None:
            return None
        return f"the corpus root the store records, {self.moved}, is not there (moved or deleted?)"

    def arguments(self) -> list[str]:
        """The corpus argument and its options, before --store."""
        found = [self.root or CORPUS_PLACEHOLDER]
        found += ["--corpus", self.kind] if self.kind else []
        found += ["--audio-root", self.audio_root] if self.audio_root else []
        return found


def corpus_of(attrs: Mapping[str, Any], labels: list[str] | None) -> Corpus:
    """The store's corpus from its attributes; its class set where the store does not
    record one: the smallest of its kind's that holds every label of its manifest
    (`labels`; None: unreadable, "all")."""
    classes = attrs.get("classes")
    if not classes:
        classes = "all" if labels is None else _classes_of(attrs, set(labels))
    root, kind, audio = (attrs.get(key) for key in ("corpus_root", "corpus", "audio_root"))
    return Corpus(
        None if root is None else str(root),
        None if kind is None else str(kind),
        None if audio is None else str(audio),
        str(classes),
    )


def _classes_of(attrs: Mapping[str, Any], labels: set[str]) -> str:
    try:
        sets = store_kind(attrs).sets(sorted(labels))
    except ConfigError:
        return "all"
    holding = [(len(s.mapping), n) for n, s in sets.items() if labels <= set(s.mapping)]
    return min(holding)[1] if holding else "all"


@dataclass(frozen=True)
class Remake:
    """The extraction of one set: its kind, the kind's options (all of them, as the set
    records them), and the run-wide options it depends on."""

    name: str
    kind: str
    options: dict[str, Any]
    attrs: Mapping[str, Any] = field(repr=False)  # as the set records them
    precision: str | None = None
    asr: dict[str, Any] = field(default_factory=dict)  # asr_model, asr_max_new_tokens
    augment: tuple[str, ...] = ()  # a view set's: its view, as --augment takes it

    # Any: each of ExtractConfig's run-wide fields (repair, progress ...), of its own type.
    def config(self, corpus: Corpus, **run: Any) -> ExtractConfig:
        """What `extract_features` makes the set again with (``run``: repair, progress)."""
        asr = {"text_source": "asr", **self.asr} if self.asr else {}
        return ExtractConfig(
            features=(self.kind,),
            classes=corpus.classes,
            options={self.kind: self.options},
            precision=self.precision or "auto",
            corpus=corpus.kind,
            audio_root=None if corpus.audio_root is None else Path(corpus.audio_root),
            augment=self.augment,
            **asr,
            **run,
        )

    def flags(self) -> list[str] | None:
        """The kind's options and the run-wide ones as `ser extract` flags; None when
        flags cannot give an option as the set has it."""
        found = ["--features", self.kind]
        every = flags()
        for option, value in self.options.items():
            flag = None if option == "name" else _flag_of(every, self.kind, option)
            if flag is None:
                continue  # checked below: what ser extract gives without it
            if flag.type is bool:
                found += [f"--{flag.param.replace('_', '-')}"] if value else []
            elif value not in (None, ""):
                found += [f"--{flag.param.replace('_', '-')}", str(value)]
        if not KINDS[self.kind].named and not self._flags_give_it(every):
            return None
        name = self.options.get("name")
        found += ["--name", f"{self.kind}={name}"] if name else []
        found += ["--precision", self.precision] if self.precision else []
        if self.asr:
            found += ["--text-source", "asr", "--asr-model", str(self.asr["asr_model"])]
            tokens = self.asr.get("asr_max_new_tokens")
            found += ["--asr-max-new-tokens", str(tokens)] if tokens else []
        for view in self.augment:
            found += ["--augment", view]
        return found

    def _flags_give_it(self, every: Mapping[str, Flag]) -> bool:
        """Whether the kind's flagged options alone make this set (a kind whose sets are
        named by their options: no model to load to tell)."""
        given = {k: v for k, v in self.options.items() if _flag_of(every, self.kind, k)}
        try:
            made = {s.name: s.attrs for s in build_extractor(self.kind, **given).specs()}
        except ConfigError:
            return False
        if self.name not in made:
            return False
        found = differences(identity(self.attrs), identity(made[self.name]))
        return all(line.split(":")[0] in _VERSIONS for line in found)


def remake(name: str, attrs: Mapping[str, Any], sets: list[str]) -> Remake | None:
    """How set ``name`` (with ``attrs``) was extracted, in a store holding ``sets``;
    None for a set no extractor made (imported) or one of an unknown kind. A view set is
    its clean set's extraction with its view (`Remake.name` and `attrs` the clean set's)."""
    view = clean_of(name, attrs)
    if view is not None:
        clean, clean_attrs, seen = view
        tail = f".{seen.suffix}"  # the store's views of the same kind, as clean names
        made = remake(clean, clean_attrs, [n.removesuffix(tail) for n in sets if n.endswith(tail)])
        return None if made is None else dataclasses.replace(made, augment=(seen.spec,))
    kind = str(attrs.get("extractor", ""))
    if kind not in KINDS:
        return None
    registered = KINDS[kind]
    try:
        options = registered.options.from_attrs(attrs)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None  # its settings are not all there (damaged provenance): no flags make it
    precision = options.pop("precision", None)
    options.pop("transcripts", None)  # --text-source asr: the store's transcripts again
    asr = {k: attrs[k] for k in ("asr_model", "asr_max_new_tokens") if k in attrs}
    if registered.named:
        stem = _stem(registered, name, attrs)
        if stem != set_stem(str(attrs.get("model", ""))):
            options["name"] = stem  # --name made it
        pool = attrs.get("pool")
        frames = registered.options.set_name(stem, {**attrs, "pool": None})
        if pool and frames not in sets:
            options["pooled_only"] = True
    text = attrs.get("text_source") == "asr"
    recorded = None if precision is None else str(precision)
    return Remake(name, kind, options, attrs, recorded, asr if text else {})


def _stem(registered: Kind, name: str, attrs: Mapping[str, Any]) -> str:
    """The name stem of a set: its name less what its layer, pooling and transcripts add."""
    tail = registered.options.set_name("", attrs)
    return name[: len(name) - len(tail)] if tail and name.endswith(tail) else name


def _flag_of(every: Mapping[str, Flag], kind: str, option: str) -> Flag | None:
    """The flag that sets `option` of `kind` alone or with others (None: none does)."""
    own = every.get(f"{kind}_{option}")
    if own is not None:
        return own
    shared = every.get(option)
    return shared if shared is not None and (kind, option) in shared.targets else None


def command(
    store: Path,
    corpus: Corpus,
    name: str,
    attrs: Mapping[str, Any],
    sets: list[str],
    finish: str = "--repair",
) -> str:
    """The command that repairs set ``name`` (with ``attrs``, in a store holding ``sets``):
    `ser extract ... --repair`, or `ser store import ... --overwrite` for an imported set
    (without --overwrite for one whose import stopped part-way: it goes on from the rows
    written); `ser store repair` where flags cannot make it. ``finish="--overwrite"``: the
    extraction that makes it again whole, whatever is left of it."""
    path = str(store)
    if attrs.get("extractor") == "imported":
        args = [
            "store",
            "import",
            path,
            str(attrs.get("source", "FILE.npz")),
            "--name",
            name,
            "--modality",
            str(attrs.get("modality")),
            "--level",
            str(attrs.get("level")),
            *(["--dtype", str(attrs["dtype"])] if "dtype" in attrs else []),  # its fingerprint's
        ]
        unfinished = attrs.get("complete") is False and finish != "--overwrite"
        return shlex.join(["ser", *args, *([] if unfinished else ["--overwrite"])])
    made = remake(name, attrs, sets)
    given = None if made is None else made.flags()
    if given is None:
        return store_repair(store, corpus)
    extract = ["extract", *corpus.arguments(), "--store", path, "--classes", corpus.classes]
    return shlex.join(["ser", *extract, *given, finish])


def store_repair(store: Path, corpus: Corpus) -> str:
    """`ser store repair STORE`, with the corpus root where the store does not record it."""
    tail = [] if corpus.root else [CORPUS_PLACEHOLDER]
    return shlex.join(["ser", "store", "repair", str(store), *tail])


def store_corpus(store: FeatureStore) -> Corpus:
    """The corpus of an opened `FeatureStore`, its root unknown where it is gone."""
    labels = None if store.manifest_damage else store.manifest.column("label").tolist()
    return corpus_of(store.attrs, labels).here()


def repair_command(store: FeatureStore, name: str) -> str:
    """The command that repairs set ``name`` of an opened `FeatureStore` (`command`): a set
    gone from the store is extracted again as its receipt records it; one whose attributes
    only the receipt keeps is `ser store repair`'s (it restores them, or extracts it again)."""
    corpus = store_corpus(store)
    sets = store.feature_sets()
    attrs = store.recorded_attrs(name) if name in sets else None
    if attrs is not None:
        return command(store.path, corpus, name, attrs, sets)
    copy = receipt_sets(store.path).get(name)
    if copy is None:
        return LOST
    if name not in sets:
        return command(store.path, corpus, name, copy, sets)
    return store_repair(store.path, corpus)


def view_command(store: FeatureStore, name: str) -> str:
    """The `ser extract ... --augment VIEW --overwrite` that makes view set ``name`` of an
    opened `FeatureStore` again from its clean set as the store holds it now (a stale
    view: `ser.cache.verify.stale_view`); the clean set, unchanged, is kept as it is."""
    attrs = store.info(name).attrs
    found = clean_of(name, attrs)
    if found is None:
        raise ValueError(f"feature set {name!r} is no view set")
    clean, _, view = found
    fresh = view_spec_of(clean, store.info(clean).attrs, view)[1]
    sets = store.feature_sets()
    made = command(store.path, store_corpus(store), name, fresh, sets, "--overwrite")
    if made.startswith("ser store repair"):  # no flags make its clean set: repair cannot
        return f"the `ser extract` that made {clean}, with --augment {view.spec} --overwrite"
    return made


def rebuild_command(store: FeatureStore, name: str) -> str | None:
    """The `ser extract ... --overwrite` that makes set ``name`` of an opened `FeatureStore`
    again whole, from its attributes or its receipt's copy (None: neither is left, or no
    flags make it)."""
    sets = store.feature_sets()
    attrs = store.recorded_attrs(name) if name in sets else None
    attrs = attrs or receipt_sets(store.path).get(name)
    if attrs is None:
        return None
    found = command(store.path, store_corpus(store), name, attrs, sets, "--overwrite")
    return None if found.startswith("ser store repair") else found
