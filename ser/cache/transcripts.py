"""Transcript sets: the text a speech recogniser produced for every utterance of a store,
in the group ``transcripts/<name>`` (docs/dev/store.md), by methods `FeatureStore` inherits.

Batches are staged as JSON files keyed by manifest row (temp file + ``os.replace``, the
set's fingerprint inside): a killed run keeps what it finished, a resumed one may batch
differently. Once every row is in, they are laid out as arrays in manifest order.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.cache.atomic import atomic_write
from ser.cache.backend import TRANSCRIPTS, Backend, check_name, failure_arrays, read_failures
from ser.cache.fingerprint import plain_json
from ser.cache.manifest import Manifest
from ser.errors import StoreError


@dataclass(frozen=True)
class TranscriptSet:
    """A complete transcript set: ``texts[i]`` is manifest row i's transcript."""

    name: str
    texts: tuple[str, ...]
    failures: dict[int, str] = field(repr=False)  # manifest row -> reason ("" text)
    attrs: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class StagedTranscripts:
    texts: dict[int, str]
    failures: dict[int, str]

    @property
    def done(self) -> set[int]:
        return set(self.texts) | set(self.failures)


class TranscriptSets:
    """`FeatureStore`'s transcript-set methods."""

    # Set by `FeatureStore.__init__`.
    _backend: Backend
    path: Path
    _staging: Path

    if TYPE_CHECKING:  # defined by `FeatureStore`, shared with its feature sets

        @property
        def manifest(self) -> Manifest: ...

        def _require_writable(self) -> None: ...
        def _clear_staging(self, name: str) -> None: ...
        def _begin(self, group: str, prov: dict[str, Any], what: str, overwrite: bool) -> None: ...
        def _complete(self, attrs: dict[str, Any], what: str) -> dict[str, Any]: ...
        def _commit_attrs(self, group: str, attrs: dict[str, Any]) -> None: ...

    def transcript_sets(self) -> list[str]:
        return self._backend.group_names(TRANSCRIPTS)

    def begin_transcripts(self, name: str, attrs: dict[str, Any], overwrite: bool = False) -> None:
        """Record a transcript set's provenance first; the rules of `begin_feature_set`."""
        self._require_writable()
        check_name(name)
        prov = plain_json(attrs, "transcript set")
        self._begin(f"{TRANSCRIPTS}/{name}", prov, f"transcript set {name!r}", overwrite)

    def transcript_attrs(self, name: str) -> dict[str, Any]:
        attrs = self._backend.group_attrs(f"{TRANSCRIPTS}/{name}")
        if attrs is None:
            have = ", ".join(self.transcript_sets()) or "none"
            raise StoreError(f"{self.path}: no transcript set {name!r} (transcript sets: {have})")
        return attrs

    def staged_transcripts(self, name: str) -> StagedTranscripts:
        """Transcripts of an incomplete set committed so far (by manifest row). Files of
        another fingerprint are ignored: a set begun again with other settings never
        reuses them."""
        fingerprint = self.transcript_attrs(name)["fingerprint"]
        staged = StagedTranscripts({}, {})
        for path in sorted((self._staging / TRANSCRIPTS / name).glob("*.json")):
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise StoreError(f"{path}: unreadable staged transcripts ({err})") from None
            if payload.get("fingerprint") != fingerprint:
                continue
            for target, key in ((staged.texts, "texts"), (staged.failures, "failures")):
                for row, value in payload.get(key, {}).items():
                    index = int(row)
                    if not 0 <= index < len(self.manifest):
                        raise StoreError(f"{path}: manifest row {index} out of range")
                    target[index] = str(value)
        return staged

    def write_transcripts(
        self, name: str, texts: dict[int, str], failures: dict[int, str] | None = None
    ) -> None:
        """Commit transcripts and failures (by manifest row); safe to kill at any moment."""
        payload = {
            "fingerprint": self.transcript_attrs(name)["fingerprint"],
            "texts": {str(i): t for i, t in texts.items()},
            "failures": {str(i): r for i, r in (failures or {}).items()},
        }
        folder = self._staging / TRANSCRIPTS / name
        text = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        path = folder / f"{uuid.uuid4().hex}.json"
        atomic_write(path, lambda f: f.write(text), f"transcripts of {name}")

    def finish_transcripts(self, name: str) -> None:
        """Every manifest row transcribed (or failed) -> arrays in manifest order, complete."""
        self._require_writable()
        attrs = self.transcript_attrs(name)
        if attrs.get("complete"):
            self._clear_staging(f"{TRANSCRIPTS}/{name}")
            return
        staged = self.staged_transcripts(name)
        missing = len(self.manifest) - len(staged.done)
        if missing:
            raise StoreError(
                f"{self.path}: transcript set {name!r} lacks {missing} utterance(s); run the "
                "extraction again to finish it"
            )
        group = f"{TRANSCRIPTS}/{name}"
        texts = np.array([staged.texts.get(i, "") for i in range(len(self.manifest))], np.str_)
        failures = failure_arrays(self.manifest.utt_ids, staged.failures)
        self._backend.write_arrays(group, {"text": texts, **failures})
        self._commit_attrs(group, {**attrs, "complete": True})
        self._clear_staging(group)

    def read_transcripts(self, name: str) -> TranscriptSet:
        attrs = self._complete(self.transcript_attrs(name), f"transcript set {name!r}")
        group = f"{TRANSCRIPTS}/{name}"
        texts = self._backend.read_array(group, "text")
        if texts is None or len(texts) != len(self.manifest):
            raise StoreError(f"{self.path}: transcript set {name!r} has no text per utterance")
        failed = read_failures(self._backend, group)
        failures = {self.manifest.index(utt_id): reason for utt_id, reason in failed}
        return TranscriptSet(name, tuple(texts.tolist()), failures, attrs)

    def delete_transcripts(self, name: str) -> None:
        self._require_writable()
        self._backend.delete_group(f"{TRANSCRIPTS}/{name}")
        self._clear_staging(f"{TRANSCRIPTS}/{name}")

    def check_transcripts(self, name: str) -> list[str]:
        """Problems of transcript set ``name`` (empty when healthy): incomplete, or
        unreadable (a chunk failing its checksum among them)."""
        where = f"transcripts {name}"
        try:
            if not self.transcript_attrs(name).get("complete"):
                return [f"{where}: incomplete (transcription has not finished)"]
            self.read_transcripts(name)
        except StoreError as error:  # its metadata, a chunk, the manifest
            return [f"{where}: {error}"]
        return []
