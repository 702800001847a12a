"""The toolkit `ser demo-corpus` hands a corpus kind's synthetic writer
(`ser.corpus.kind.Toolkit`): the acted corpora's speech (`ser.synth.acted.MAKER`), and by
name the layouts written here at length, whose dialog plans, transcripts and panels of
annotators need the rest of `ser.synth` (docs/dev/add-corpus.md).

>>> sorted(LAYOUTS)
['cmu-mosei', 'cmu-mosi', 'emobox', 'iemocap', 'meld', 'msp-podcast']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ser.corpus.kind import Written
from ser.errors import ConfigError
from ser.synth.acted import ActedMaker, ActedTruth
from ser.synth.cmu import CmuConfig, write_cmu
from ser.synth.corpus import SynthConfig, SynthTruth, write_corpus, write_corpus_from_metadata
from ser.synth.emobox import EmoBoxConfig, EmoBoxTruth, write_emobox
from ser.synth.msp_size import write_msp_size
from ser.synth.talk import TalkConfig, write_meld, write_msp_podcast


def _acted(truth: ActedTruth) -> Written:
    return Written.of(truth.root, truth.files)


def _emobox(truth: EmoBoxTruth) -> Written:
    """The checkout's utterances; ser reads its first corpus (`data/<name>`)."""
    written = _acted(truth.acted())
    return replace(written, reads=truth.folder(next(iter(truth.files))))


def _iemocap(out: Path, seed: int, options: Mapping[str, Any]) -> Written:
    """IEMOCAP's sessions of dialogs; options `dialogs_per_session` or `metadata` (a CSV
    of exactly the utterances to write), and from Python `utterances_per_dialog` (each
    dialog's, its small corpus's)."""
    metadata, dialogs = options.get("metadata"), options.get("dialogs_per_session")
    truth: SynthTruth
    if metadata is None:
        config = SynthConfig(seed=seed)
        if dialogs is not None:
            config = replace(config, dialogs_per_session=dialogs)
        if "utterances_per_dialog" in options:
            each = int(options["utterances_per_dialog"])
            config = replace(config, utterances_per_dialog=(each, each))
        truth = write_corpus(out, config)
    elif dialogs is not None:
        raise ConfigError("--dialogs-per-session does not apply with --from-metadata")
    else:
        truth = write_corpus_from_metadata(out, metadata, seed=seed)
    utts = truth.utterances
    hours = sum(u.duration for u in utts) / 3600
    dialog_count = len({u.dialog for u in utts})
    detail = f"({hours:.2f} h) in {dialog_count} dialogs"
    return Written(truth.root, len(utts), len({u.speaker for u in utts}), detail)


def _msp_podcast(out: Path, seed: int, options: Mapping[str, Any]) -> Written:
    """MSP-Podcast's layout: a few speakers' synthetic speech, or with option `utterances`
    or `hours` the real corpus's size in labels and durations, without audio."""
    utterances, hours = options.get("utterances"), options.get("hours")
    if utterances is None and hours is None:
        return _acted(write_msp_podcast(out, TalkConfig(seed=seed)))
    return write_msp_size(out, utterances, hours, seed)


LAYOUTS: dict[str, Callable[[Path, int, Mapping[str, Any]], Written]] = {
    "iemocap": _iemocap,
    "msp-podcast": lambda out, seed, given: _msp_podcast(out, seed, given),
    "meld": lambda out, seed, _: _acted(write_meld(out, TalkConfig(speakers=4, seed=seed))),
    # An EmoBox checkout (data/<name>/, downloads/, a track2 file): read with --corpus emobox.
    "emobox": lambda out, seed, _: _emobox(write_emobox(out, EmoBoxConfig(seed=seed))),
    # The CMU-MultimodalSDK's layout: full-video wavs, segmented transcripts, .csd labels.
    "cmu-mosei": lambda out, seed, _: _acted(write_cmu(out, CmuConfig(seed=seed)).acted()),
    "cmu-mosi": lambda out, seed, _: _acted(
        write_cmu(out, CmuConfig("cmu-mosi", seed=seed)).acted()
    ),
}


class SynthToolkit(ActedMaker):
    """`ActedMaker`'s speech and the `LAYOUTS` by name."""

    def layout(self, name: str) -> Callable[[Path, int, Mapping[str, Any]], Written]:
        if name not in LAYOUTS:
            raise ConfigError(f"ser.synth writes no {name!r} layout: one of {', '.join(LAYOUTS)}")
        return LAYOUTS[name]


TOOLKIT = SynthToolkit()
