"""A store's health, by methods `FeatureStore` inherits: `verify` (every chunk, checksum,
layout and piece of metadata; view sets whose clean set was extracted again since), the
damage of a set, and its repair: damaged rows written back over (`repair`), damaged
metadata written anew from the store's own copies (`mend`), a damaged manifest rebuilt
from the corpus (`rebuild_manifest`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.cache import mend, repair_writer
from ser.cache.backend import (
    DATA,
    MANIFEST,
    TRANSCRIPTS,
    Backend,
    DamagedMetadata,
    UnreadablePart,
)
from ser.cache.manifest import DERIVED, Manifest
from ser.cache.receipt_file import receipt_path, receipt_sets
from ser.cache.repair import repair_runs
from ser.cache.repair_writer import RepairWriter
from ser.cache.shards import ShardWriter
from ser.cache.store_types import Damage, VerifyReport
from ser.cache.verify import RECORDED, Health, check_feature_set, data_bytes, stale_view
from ser.errors import StoreError
from ser.runtime.progress import BYTES, Counter, Tally


class StoreHealth:
    """`FeatureStore`'s checks and repairs."""

    # Set by `FeatureStore.__init__`.
    _backend: Backend
    path: Path
    _manifest: Manifest | StoreError
    attrs: dict[str, Any]
    damaged_root: DamagedMetadata | None
    _staging: Path

    if TYPE_CHECKING:  # defined by `FeatureStore`

        @property
        def manifest(self) -> Manifest: ...
        @property
        def manifest_damage(self) -> StoreError | None: ...
        def feature_sets(self) -> list[str]: ...
        def transcript_sets(self) -> list[str]: ...
        def check_transcripts(self, name: str) -> list[str]: ...
        def delete_feature_set(self, name: str) -> None: ...
        def shard_writer(self, name: str) -> ShardWriter: ...
        def _attrs_of(self, name: str) -> dict[str, Any]: ...
        def _complete_attrs(self, name: str) -> dict[str, Any]: ...
        def _commit_attrs(self, group: str, attrs: dict[str, Any]) -> None: ...
        def _require_writable(self) -> None: ...
        def _clear_staging(self, name: str) -> None: ...

    def verify(self) -> list[str]:
        """Problems found (empty = healthy): chunk and content checksums, offsets,
        NaN/Inf, completeness, failures."""
        return self.verify_report().problems

    def verify_report(self, bar: Counter | None = None) -> VerifyReport:
        """`verify` with each set's checksum as read and as recorded, its damage, and the
        store's own damaged parts (its metadata, its manifest, transcript sets): a damaged
        part never keeps the others from being checked. `bar`: where the bytes of the
        sets' data read are shown (`ser.runtime.progress.task_bar`), one task."""
        report = VerifyReport(problems=[], checksums={})
        tally = Tally(bar, "verify", self._scanned_bytes(), BYTES) if bar is not None else None
        unreadable: dict[str, list[DamagedMetadata]] = {}
        for damaged in self._backend.damaged_metadata():
            line = f"{_said(damaged.part)}: {damaged.file} {damaged.reason}"
            if isinstance(damaged, UnreadablePart):
                report.unreadable.add(damaged.part)
                report.problems.append(line)
                continue
            unreadable.setdefault(damaged.part, []).append(damaged)
            _add(report, damaged.part, line)
        said_already = MANIFEST in unreadable or MANIFEST in report.unreadable
        if self.manifest_damage is not None and not said_already:
            detail = mend.damage_detail(str(self.path), self.manifest_damage)
            _add(report, MANIFEST, f"manifest: {detail}")
        manifest = None if self.manifest_damage else self.manifest
        for name in self.feature_sets():
            if name in report.unreadable:
                report.checksums[name] = None
                continue
            nodes = tuple(
                d.node for d in unreadable.get(name, ()) if d.node in (name, f"{name}/{DATA}")
            )
            if nodes:  # checked once `mend` has written its metadata anew
                said = tuple(report.parts.pop(name))
                report.damaged[name] = Damage(metadata=nodes, problems=said)
                report.checksums[name] = None
                continue
            report.parts.pop(name, None)
            self._check_into(report, name, manifest, tally)
        if tally is not None:
            tally.finish()  # the sets it could not read: none of their bytes is left
        self._stale_into(report)
        self._missing_into(report)
        for name in self.transcript_sets():
            part = f"{TRANSCRIPTS}/{name}"
            said_already = part in unreadable or part in report.unreadable
            for problem in () if said_already else self.check_transcripts(name):
                _add(report, part, problem)
        return report

    def _scanned_bytes(self) -> int:
        """The bytes of data `verify_report` reads: every complete set's whose attributes
        can be read."""
        total = 0
        for name in self.feature_sets():
            with contextlib.suppress(StoreError):  # damaged: said by the check itself
                total += data_bytes(self._backend, name, self._attrs_of(name))
        return total

    def _check_into(
        self, report: VerifyReport, name: str, manifest: Manifest | None, tally: Tally | None
    ) -> None:
        attrs = self._attrs_of(name)
        advance = tally.advance if tally is not None else None
        found = check_feature_set(self._backend, manifest, name, attrs, advance)
        report.problems.extend(p for p in found.problems if p not in report.problems)
        report.checksums[name] = found.checksum
        if attrs.get("complete"):
            report.recorded[name] = found.recorded
        if found.damage:
            report.damaged[name] = found.damage

    def _stale_into(self, report: VerifyReport) -> None:
        """The complete view sets whose clean set, complete too, was extracted again with
        other settings since they were made from it (`stale_view`)."""
        complete = {}
        for name in self.feature_sets():
            with contextlib.suppress(DamagedMetadata):  # said by the checks above
                attrs = self._attrs_of(name)
                if attrs.get("complete") and name not in report.damaged:
                    complete[name] = attrs
        for name, attrs in complete.items():
            clean = attrs.get("view_of")
            if clean is None or clean not in complete:
                continue
            problem = stale_view(name, attrs, complete[clean])
            if problem is not None:
                report.problems.append(problem)
                report.stale[name] = str(clean)

    def _missing_into(self, report: VerifyReport) -> None:
        """The sets the store's receipt records it holding that are gone (a folder or group
        deleted): damaged whole, to be extracted again."""
        present = set(self.feature_sets())
        for name in sorted(set(receipt_sets(self.path)) - present):
            problem = (
                f"{name}: missing from the store, which its receipt "
                f"({receipt_path(self.path)}) lists as extracted (its folder or group deleted?)"
            )
            report.problems.append(problem)
            report.checksums[name] = None
            report.damaged[name] = Damage(whole=True, problems=(problem,))

    def recorded_attrs(self, name: str) -> dict[str, Any] | None:
        """Set ``name``'s attributes, from its copy where its own are damaged (None:
        neither can be read)."""
        try:
            return self._attrs_of(name)
        except DamagedMetadata:
            return mend.copied_attrs(self._backend, name)

    def mend(
        self, backup: Mapping[str, Mapping[str, Any]] | None = None
    ) -> tuple[list[str], list[str]]:
        """Write anew the damaged metadata the store's own copies (or ``backup``, a
        receipt's attributes by set, where the data bears them out) restore: (what was
        restored, what could not be), each a line (`mend.mend_metadata`)."""
        self._require_writable()
        done, left = mend.mend_metadata(self._backend, self.attrs, backup or {})
        self.attrs, self.damaged_root = mend.root_attrs(self._backend)
        self._manifest = mend.read_manifest(self._backend)
        return done, left

    def rebuild_manifest(self, candidates: Iterable[Manifest]) -> bool:
        """Write a damaged manifest anew: the first of ``candidates`` (the corpus's, as it
        reads now) that agrees with what is left of it (`mend.agreeing_manifest`), else
        StoreError; False when the manifest is not damaged."""
        self._require_writable()
        if self.manifest_damage is None:
            return False
        sets = self.feature_sets()
        manifest = mend.agreeing_manifest(self._backend, candidates, self.attrs, sets)
        self._backend.replace_manifest(manifest.columns(), self.attrs)
        self._manifest = mend.read_manifest(self._backend)
        return True

    def add_derived_column(self, name: str, values: Sequence[str]) -> None:
        """Write the manifest anew with `DERIVED` column `name` (a value per row) added or
        replaced: it holds the same utterances, and the corpus's manifest still agrees."""
        self._require_writable()
        if name not in DERIVED:
            raise StoreError(f"{name!r} is no column ser derives ({', '.join(DERIVED)})")
        columns = {**self.manifest.columns(), name: np.asarray(values, dtype=np.str_)}
        self._backend.replace_manifest(Manifest.from_columns(columns).columns(), self.attrs)
        self._manifest = mend.read_manifest(self._backend)

    def checksum(self, name: str) -> str:
        """sha256 of the data bytes (little-endian, C order) in manifest order."""
        self._complete_attrs(name)
        found = self._health(name)
        if found.checksum is None:
            raise StoreError(f"{self.path}: " + "; ".join(found.problems))
        return found.checksum

    def damage(self, name: str) -> Damage:
        """What of complete set ``name`` is damaged (falsy when nothing is)."""
        self._complete_attrs(name)
        return self._health(name).damage

    def begin_repair(self, name: str) -> Damage:
        """The damage of complete set ``name`` (`damage`), made ready for its repair: a
        repair killed while writing its rows in place is gone on with where the damage
        lies within its plan (`repair_writer.resumed`: the plan's damage is returned),
        else what an earlier repair left is dropped (a repair extracts afresh); a set
        damaged ``whole`` is deleted, to be begun and extracted again."""
        self._require_writable()
        damage = self.damage(name)
        if damage.whole:
            self.delete_feature_set(name)
            return damage
        fingerprint = str(self._attrs_of(name)["fingerprint"])
        chunk_rows = self._backend.chunk_rows(name)
        going_on = repair_writer.resumed(self._staging / name, fingerprint, damage, chunk_rows)
        if going_on is not None:
            return going_on
        self._clear_staging(name)
        return damage

    def repair_writer(self, name: str, damage: Damage) -> RepairWriter | None:
        """A picklable writer of complete set ``name``'s damaged utterances (``damage``,
        from `begin_repair`) straight back into their place in its chunks, each row once,
        from any process (`repair_writer.py`); None where its chunks take no rows in place
        or carry no checksum (staged through `shard_writer`, as before)."""
        self._require_writable()
        attrs = self._complete_attrs(name)
        offsets = self._backend.read_array(name, "offsets")
        if offsets is None or damage.whole or not damage.utterances:
            return None
        chunks = self._backend.direct_chunks(name)
        staging = self._staging / name
        chunk_rows = self._backend.chunk_rows(name)
        return repair_writer.open_writer(chunks, staging, attrs, damage, offsets, chunk_rows)

    def repair(self, name: str, damage: Damage) -> bool | None:
        """Finish the repair of the damaged utterances: their rows, re-extracted straight
        into their place (`repair_writer`: the chunks they touch sealed), or into this
        set's staged shards and written over the stored ones; check the set again. True:
        its bytes are those recorded when it was completed; False: they differ (extracted
        elsewhere, in other batches), and their checksum is recorded now; None: a set
        written before checksums were."""
        self._require_writable()
        attrs = self._complete_attrs(name)
        if damage.whole or not damage.utterances:
            raise StoreError(f"{self.path}: feature set {name!r}: nothing a repair can mend")
        offsets = self._backend.read_array(name, "offsets")
        if offsets is None:
            raise StoreError(f"{self.path}: feature set {name!r} has no offsets array")
        chunks = self._backend.direct_chunks(name)
        placed = repair_writer.existing(chunks, self._staging / name, attrs)
        if placed is not None:
            self._sealed(name, placed)
        else:
            runs = repair_runs(self.shard_writer(name), offsets, damage.utterances, self.manifest)
            self._backend.repair_rows(name, runs)
        after = check_feature_set(self._backend, self.manifest, name, attrs)
        if after.damage.utterances or (after.damage.whole and after.checksum is None):
            raise StoreError(
                f"{self.path}: feature set {name!r} is still damaged after its repair: "
                + "; ".join(after.problems)
            )
        self._clear_staging(name)
        if after.recorded is None or after.checksum is None:
            return None
        if after.checksum == after.recorded:
            self._commit_attrs(name, attrs)  # HDF5's repair writes a new data array
            return True
        self._commit_attrs(name, {**attrs, RECORDED: after.checksum})
        return False

    def _sealed(self, name: str, writer: RepairWriter) -> None:
        """The chunks a repair wrote into sealed; StoreError naming the utterances it
        refused (their damaged chunks left as they were, its records dropped)."""
        refused = repair_writer.finish(writer)
        if not refused:
            return
        self._clear_staging(name)
        first = min(refused)
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise StoreError(
            f"{self.path}: feature set {name!r}: {self.manifest.utt_ids[first]}: "
            f"{refused[first]}{more}; its damaged rows were left as they were (extract it "
            "into a new store)"
        )

    def _health(self, name: str) -> Health:
        return check_feature_set(self._backend, self.manifest, name, self._attrs_of(name))


def _add(report: VerifyReport, part: str, problem: str) -> None:
    report.problems.append(problem)
    report.parts.setdefault(part, []).append(problem)


def _said(part: str) -> str:
    """How verify's lines start for a part of the store."""
    if part.startswith(TRANSCRIPTS + "/"):
        return f"transcripts {part.split('/', 1)[1]}"
    return part or "store"
