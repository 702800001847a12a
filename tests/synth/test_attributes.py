"""The synthetic corpora's attributes and votes follow each utterance's audio: arousal
rises with how loud its wav is, the annotators' votes split where an utterance lies
between classes, and drawing the votes moves no audio, text or consensus label."""

from __future__ import annotations

import doctest
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from scipy.stats import spearmanr

import ser.synth.attributes
from ser.corpus.kinds import msp_podcast
from ser.corpus.labels import LABEL_SETS
from ser.corpus.records import Utterance
from ser.corpus.votes import vote_distribution
from ser.synth import text
from ser.synth.attributes import class_mean, conveyed, heard
from ser.synth.audio import PROSODY, blend
from ser.synth.corpus import SynthConfig, write_corpus
from ser.synth.talk import TalkConfig, write_msp_podcast

SMALL = SynthConfig(dialogs_per_session=1, utterances_per_dialog=(6, 8), duration_range=(1, 1.5))


def loudness(utterances: Sequence[Utterance]) -> np.ndarray:
    """Each wav's RMS level (dB), standardised within its speaker: speakers and sessions
    differ in level as much as emotions do, and annotators hear past that."""
    level = np.array(
        [10 * np.log10(np.mean(soundfile.read(u.wav_path)[0] ** 2)) for u in utterances]
    )
    speakers = np.array([u.speaker for u in utterances])
    for speaker in set(speakers.tolist()):
        mine = speakers == speaker
        level[mine] = (level[mine] - level[mine].mean()) / level[mine].std()
    return level


def within_class(values: np.ndarray, utterances: Sequence[Utterance]) -> np.ndarray:
    """`values` less the mean of each utterance's class."""
    labels = np.array([u.label for u in utterances])
    left = values.astype(float)
    for label in set(labels.tolist()):
        left[labels == label] -= left[labels == label].mean()
    return left


def check_arousal(utterances: Sequence[Utterance]) -> None:
    """Arousal follows the loudness of the wav, and within a class too: it is the
    utterance's, not its class's."""
    arousal, level = np.array([u.arousal for u in utterances]), loudness(utterances)
    assert spearmanr(arousal, level)[0] > 0.5
    inside = spearmanr(within_class(arousal, utterances), within_class(level, utterances))[0]
    assert inside > 0.2


def test_iemocap_arousal_follows_the_loudness_of_the_wav(synthetic_corpus: Any) -> None:
    _, truth = synthetic_corpus
    check_arousal(truth.utterances)


def test_msp_podcast_arousal_follows_the_loudness_of_the_wav(msp_podcast_corpus: Any) -> None:
    reading = msp_podcast.read(msp_podcast_corpus.root, "all")
    check_arousal([u for u in reading.utterances if u.wav_path and u.wav_path.is_file()])


def test_the_votes_are_not_all_one_hot(synthetic_corpus: Any) -> None:
    _, truth = synthetic_corpus
    four = LABEL_SETS["4"]
    kept = [u for u in truth.utterances if four.index_of(u.label) is not None]
    soft = np.array([vote_distribution(u.votes, four, four.index_of(u.label)) for u in kept])
    split = soft.max(axis=1) < 1
    assert 0.2 < split.mean() < 0.8
    # The consensus keeps the most votes but where ties are split evenly.
    consensus = np.array([four.index_of(u.label) for u in kept])
    assert (soft[np.arange(len(kept)), consensus] >= soft.max(axis=1) - 1e-9).mean() > 0.9


def test_a_neutral_vote_goes_with_a_calm_rating(synthetic_corpus: Any) -> None:
    """Angry utterances voted partly neutral are the ones rated calmer: the soft label
    carries what the consensus label lacks."""
    _, truth = synthetic_corpus
    angry = [u for u in truth.utterances if u.label == "ang"]
    doubted = [u.arousal for u in angry if any(code == "neu" for _, code in u.votes)]
    sure = [u.arousal for u in angry if all(code != "neu" for _, code in u.votes)]
    assert doubted and sure and np.mean(doubted) < np.mean(sure)


@pytest.mark.slow
def test_votes_are_drawn_apart_from_audio_text_and_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_corpus(tmp_path / "a", SMALL)
    monkeypatch.setattr(text, "STRAY_P", 1.0)  # every third annotator a stray pick
    other = write_corpus(tmp_path / "b", SMALL)
    assert [u.votes for u in first.utterances] != [u.votes for u in other.utterances]
    for a, b in zip(first.utterances, other.utterances, strict=True):
        assert (a.label, a.transcript_raw, a.attributes) == (
            b.label,
            b.transcript_raw,
            b.attributes,
        )
        assert a.wav_path is not None and b.wav_path is not None
        assert a.wav_path.read_bytes() == b.wav_path.read_bytes()


def test_what_a_profile_conveys() -> None:
    means = {code: class_mean(code) for code in PROSODY}
    assert means["ang"].arousal > means["hap"].arousal > means["neu"].arousal > means["sad"].arousal
    assert means["hap"].valence > means["neu"].valence > means["ang"].valence
    assert means["ang"].dominance > means["neu"].dominance > means["fea"].dominance
    half = blend(PROSODY["neu"], PROSODY["ang"], 0.5)
    assert means["neu"].arousal < conveyed(half).arousal < means["ang"].arousal
    chances = heard(conveyed(half), ("neu", "ang", "sad"))
    assert chances["sad"] < min(chances["neu"], chances["ang"])
    assert sum(chances.values()) == pytest.approx(1.0)
    assert means["ang"].on_scale(1, 7).arousal == pytest.approx(
        1 + (means["ang"].arousal - 1) * 1.5
    )


def test_msp_podcast_same_seed_same_votes(tmp_path: Path) -> None:
    def detailed(out: Path) -> str:
        root = write_msp_podcast(out, TalkConfig(speakers=3)).root
        return (root / msp_podcast.DETAILED).read_text()

    assert detailed(tmp_path / "a") == detailed(tmp_path / "b")


def test_docstring_examples() -> None:
    result = doctest.testmod(ser.synth.attributes)
    assert result.attempted > 0 and result.failed == 0
