"""The transcript-set half of `FeatureStore` (a mixin it inherits): ASR text per manifest
row, staged while a run transcribes (`ser.cache.transcripts`), laid out once all is in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.cache import fingerprint as fp
from ser.cache import transcripts as tx
from ser.cache.backend import TRANSCRIPTS, Backend, check_name, failure_arrays, read_failures
from ser.cache.manifest import Manifest
from ser.errors import StoreError


class TranscriptSets:
    """`FeatureStore`'s transcript-set methods (see `store.py` for the store itself)."""

    # Set by `FeatureStore.__init__`.
    _backend: Backend
    path: Path
    manifest: Manifest
    _staging: Path

    if TYPE_CHECKING:  # defined by `FeatureStore`, shared with its feature sets

        def _require_writable(self) -> None: ...
        def _clear_staging(self, name: str) -> None: ...
        def _begin(self, group: str, prov: dict[str, Any], what: str, overwrite: bool) -> None: ...
        def _complete(self, attrs: dict[str, Any], what: str) -> dict[str, Any]: ...

    def transcript_sets(self) -> list[str]:
        return self._backend.group_names(TRANSCRIPTS)

    def begin_transcripts(self, name: str, attrs: dict[str, Any], overwrite: bool = False) -> None:
        """Record a transcript set's provenance first; the rules of `begin_feature_set`."""
        self._require_writable()
        check_name(name)
        prov = fp.plain_json(attrs, "transcript set")
        if self._backend.group_attrs(TRANSCRIPTS) is None:
            self._backend.set_group_attrs(TRANSCRIPTS, {})
        self._begin(f"{TRANSCRIPTS}/{name}", prov, f"transcript set {name!r}", overwrite)

    def transcript_attrs(self, name: str) -> dict[str, Any]:
        attrs = self._backend.group_attrs(f"{TRANSCRIPTS}/{name}")
        if attrs is None:
            have = ", ".join(self.transcript_sets()) or "none"
            raise StoreError(f"{self.path}: no transcript set {name!r} (transcript sets: {have})")
        return attrs

    def staged_transcripts(self, name: str) -> tx.StagedTranscripts:
        """Transcripts of an incomplete set committed so far (by manifest row)."""
        attrs = self.transcript_attrs(name)
        return tx.read_staged(
            self._transcript_staging(name), attrs["fingerprint"], len(self.manifest)
        )

    def write_transcripts(
        self, name: str, texts: dict[int, str], failures: dict[int, str] | None = None
    ) -> None:
        """Commit transcripts and failures (by manifest row); safe to kill at any moment."""
        attrs = self.transcript_attrs(name)
        tx.write_staged(self._transcript_staging(name), attrs["fingerprint"], texts, failures or {})

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
        self._backend.set_group_attrs(group, {**attrs, "complete": True})
        self._clear_staging(group)

    def read_transcripts(self, name: str) -> tx.TranscriptSet:
        attrs = self._complete(self.transcript_attrs(name), f"transcript set {name!r}")
        group = f"{TRANSCRIPTS}/{name}"
        texts = self._backend.read_array(group, "text")
        if texts is None or len(texts) != len(self.manifest):
            raise StoreError(f"{self.path}: transcript set {name!r} has no text per utterance")
        failures = {
            self.manifest.index(str(utt_id)): str(reason)
            for utt_id, reason in read_failures(self._backend, group)
        }
        return tx.TranscriptSet(name, tuple(str(t) for t in texts.tolist()), failures, attrs)

    def delete_transcripts(self, name: str) -> None:
        self._require_writable()
        self._backend.delete_group(f"{TRANSCRIPTS}/{name}")
        self._clear_staging(f"{TRANSCRIPTS}/{name}")

    def _transcript_staging(self, name: str) -> Path:
        return self._staging / TRANSCRIPTS / name

    def _check_transcripts(self, name: str) -> list[str]:
        where = f"transcripts {name}"
        if not self.transcript_attrs(name).get("complete"):
            return [f"{where}: incomplete (transcription has not finished)"]
        try:
            self.read_transcripts(name)
        except StoreError as error:
            return [f"{where}: {error}"]
        return []
