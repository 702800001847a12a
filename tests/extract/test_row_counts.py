"""Row counts known before the extractor runs (`ser.extract.row_counts`): the samples a
file decodes to by its header, a view's length, each extractor's rows of them, and a
whole extraction's offsets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from rich.console import Console

from ser.cache import FeatureStore
from ser.corpus.audio import AudioError, Clip, Counted, count_decoded, decoded_length, load_audio
from ser.extract import decoded_lengths
from ser.extract.is13 import Is13Extractor, Is13Options
from ser.extract.logmel import LogmelExtractor
from ser.extract.registry import build_extractor
from ser.extract.row_counts import UNKNOWN, predicted_rows, predicted_sets
from ser.extract.shards import audio_sources
from ser.extract.speech import SpeechExtractor, SpeechOptions
from ser.extract.views import View, Viewed
from ser.synth.encode import write_encoded
from ser.synth.tiny import save_tiny_speech

CPU = torch.device("cpu")
# Samples at 16 kHz around the edges: under one frame, one hop, odd lengths, over 30 s.
LENGTHS = (1, 300, 400, 401, 719, 1600, 4001, 16000, 16321, 33333)


def noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def wav(folder: Path, name: str, n: int, rate: int, channels: int = 1, **kw: str) -> Path:
    path = folder / name
    data = np.stack([noise(n, c) for c in range(channels)], axis=1)  # [n, channels]
    soundfile.write(path, data, rate, **kw)
    return path


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("n", [1, 3, 999, 12345, 44101])
def test_decoded_length_is_what_decoding_gives(tmp_path: Path, rate: int, n: int) -> None:
    path = wav(tmp_path, "a.wav", n, rate, channels=2)
    assert decoded_length(path, 16000) == len(load_audio(path, 16000))


@pytest.mark.parametrize("span", [(0.0, 0.5), (0.0123, 0.7771), (0.25, 1.04), (0.3, 0.30004)])
def test_a_clip_is_cut_as_decoding_cuts_it(tmp_path: Path, span: tuple[float, float]) -> None:
    clip = Clip(wav(tmp_path, "a.flac", 44100, 44100, format="FLAC"), *span)
    assert decoded_length(clip, 16000) == len(load_audio(clip, 16000))


def test_a_length_the_header_may_estimate_is_unknown(tmp_path: Path) -> None:
    ogg = wav(tmp_path, "a.ogg", 16000, 16000, format="OGG", subtype="VORBIS")
    assert decoded_length(ogg, 16000) is None
    assert decoded_length(tmp_path / "missing.wav", 16000) is None
    assert predicted_rows(LogmelExtractor(), "frame", [ogg]).tolist() == [UNKNOWN]


def lossy(folder: Path, name: str, n: int, rate: int, channels: int) -> Path:
    """`n` samples of noise at `rate` in the container of `name`'s suffix: FFmpeg's
    encoders' (`write_encoded`; .ogg: Opus), a `.vorbis.ogg` libsndfile's Vorbis."""
    data = np.stack([noise(n, c) for c in range(channels)], axis=1)  # [n, channels]
    if name.endswith(".vorbis.ogg"):
        soundfile.write(folder / name, data, rate, format="OGG", subtype="VORBIS")
        return folder / name
    return write_encoded(folder / name, data, rate)


# Formats whose headers do not count their samples exactly: libsndfile's MP3 and Ogg
# (Vorbis, Opus), FFmpeg's MP4 and M4A (AAC); at rates and channels corpora ship.
LOSSY = [
    ("a.mp3", 22050, 1), ("a.mp3", 44100, 2), ("a.ogg", 48000, 1), ("a.vorbis.ogg", 16000, 1),
    ("a.vorbis.ogg", 44100, 2), ("a.mp4", 48000, 2), ("a.m4a", 22050, 1),
]  # fmt: skip


def loaded_length(source: Path | Clip, rate: int) -> int:
    """The samples `load_audio` gives (0: it refuses the source)."""
    try:
        return len(load_audio(source, rate))
    except AudioError:
        return 0


@pytest.mark.parametrize(("name", "rate", "channels"), LOSSY)
def test_a_length_the_header_cannot_say_is_counted_as_decoding_gives(
    tmp_path: Path, name: str, rate: int, channels: int
) -> None:
    """Files of odd lengths, clips of one (a span past its end too), one cut short and one
    missing: each counted as the loader decodes it, a source given twice decoded once."""
    files = [lossy(tmp_path, f"{n}{name}", n, rate, channels) for n in (1, 1001, 12345, 30011)]
    cut = tmp_path / f"cut{name}"
    cut.write_bytes(files[-1].read_bytes()[: files[-1].stat().st_size // 2])
    spans = [(0.0, 0.3), (0.0123, 0.4567), (0.3, 0.30004), (0.5, 2.0)]
    clips = [Clip(files[-1], start * 30011 / rate, end * 30011 / rate) for start, end in spans]
    sources = [*files, *clips, cut, tmp_path / f"missing{name}", files[0]]
    assert all(decoded_length(s, 16000) is None for s in sources)  # the header cannot say
    assert predicted_rows(LogmelExtractor(), "frame", sources).tolist() == [UNKNOWN] * 11
    decoded: list[object] = []

    def counted(source: Path | Clip) -> Counted:
        decoded.append(source)
        return count_decoded(source)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(decoded_lengths, "count_decoded", counted)
        lengths = decoded_lengths.count_lengths(sources, {}, Console(quiet=True), shown=False)
    assert sorted(map(str, decoded)) == sorted({str(s) for s in sources})  # each once
    for target in (24000, 16000):
        expected = [loaded_length(s, target) for s in sources]
        assert [lengths[s].at(target) for s in sources] == expected, target
    assert any(expected) and not all(expected)  # some decode, some do not
    predicted = predicted_rows(LogmelExtractor(), "frame", sources, lengths)
    assert predicted.tolist() == [0 if n == 0 else 1 + n // 160 for n in expected]
    fast = Viewed(clips[1], "u0", View("speed", 1.1))  # a view of it: its audio's count
    view_rows = predicted_rows(LogmelExtractor(), "frame", [fast], lengths).tolist()
    assert view_rows == [1 + len(fast.load(16000)) // 160]


def test_the_count_says_how_far_it_is_as_a_corpus_read_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what neither the header nor a count before says is decoded, each told to the
    read's hook (count, rate, ETA); nothing is told under -q."""
    told: list[tuple[str, int, int]] = []

    @contextlib.contextmanager
    def hook(console: Console, enabled: bool) -> Iterator[object]:
        yield (lambda *said: told.append(said)) if enabled else None

    monkeypatch.setattr(decoded_lengths, "read_progress", hook)
    mp3s = [lossy(tmp_path, f"{n}.mp3", 1000 * n, 16000, 1) for n in (1, 2, 3)]
    known = {mp3s[0]: Counted(16000, 5)}  # the prints decoded it
    sources = [*mp3s, wav(tmp_path, "a.wav", 800, 16000), None, "text"]
    lengths = decoded_lengths.count_lengths(sources, known, Console(), shown=True)
    assert told == [(decoded_lengths.AUDIO_LENGTHS, 1, 2), (decoded_lengths.AUDIO_LENGTHS, 2, 2)]
    assert lengths[mp3s[0]] == known[mp3s[0]] and set(lengths) == set(mp3s)
    told.clear()
    decoded_lengths.count_lengths(mp3s, {}, Console(), shown=False)  # -q
    assert told == []


@pytest.mark.parametrize("view", [View("speed", 0.9), View("speed", 1.1), View("noise", 20.0)])
def test_a_view_s_length_is_what_it_gives(tmp_path: Path, view: View) -> None:
    sources = [Viewed(wav(tmp_path, f"{n}.wav", n, 16000), f"u{n}", view) for n in LENGTHS]
    expected = [1 + len(s.load(16000)) // 160 for s in sources]
    assert predicted_rows(LogmelExtractor(), "frame", sources).tolist() == expected


def rows_of(extractor, waves: list[np.ndarray]) -> list[dict[str, int]]:  # type: ignore[no-untyped-def]
    """Each wave's rows per set, extracted alone (a too-short one: none)."""
    extractor.load(CPU)
    counts = []
    for wave in waves:
        try:
            out = extractor.extract([wave])[0]
            counts.append({name: len(rows) for name, rows in out.items()})
        except Exception:  # the input is refused: no rows in any set
            counts.append({spec.name: 0 for spec in extractor.specs()})
    return counts


def assert_predicted(extractor, tmp_path: Path, lengths: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
    files = [wav(tmp_path, f"{n}.wav", n, extractor.sample_rate) for n in lengths]
    predicted = predicted_sets(extractor, extractor.specs(), files)
    actual = rows_of(extractor, [load_audio(f, extractor.sample_rate) for f in files])
    for name, counts in predicted.items():
        assert counts.tolist() == [rows[name] for rows in actual], name


@pytest.mark.parametrize("model_type", ["hubert", "wav2vec2"])
def test_speech_rows_are_the_conv_stack_s_frames(tmp_path: Path, model_type: str) -> None:
    folder = save_tiny_speech(tmp_path / model_type, model_type)  # type: ignore[arg-type]
    options = SpeechOptions(model=str(folder), layers="1,2", pool="mean", precision="fp32")
    assert_predicted(SpeechExtractor(options), tmp_path, LENGTHS)


def test_whisper_rows_are_its_windows_frames(tmp_path: Path, tiny_models) -> None:  # type: ignore[no-untyped-def]
    options = SpeechOptions(model=str(tiny_models.whisper), pool="mean", precision="fp32")
    assert_predicted(SpeechExtractor(options), tmp_path, (1, 319, 320, 16001, 480319, 480321))


def test_logmel_rows_are_one_a_hop_windowed_or_not(tmp_path: Path) -> None:
    extractor = LogmelExtractor()
    extractor.window_frames = 20  # the longer waves are computed a window at a time
    assert_predicted(extractor, tmp_path, LENGTHS)


def test_is13_is_one_row_of_enough_audio(tmp_path: Path) -> None:
    pytest.importorskip("opensmile")
    assert_predicted(Is13Extractor(Is13Options()), tmp_path, (400, 959, 960, 961, 16000))


def test_text_rows_are_its_tokens(tiny_models) -> None:  # type: ignore[no-untyped-def]
    extractor = build_extractor("bert", model=str(tiny_models.bert), pool="mean", precision="fp32")
    texts = ["", "hello", "i am so happy today, it is wonderful", None]
    predicted = predicted_sets(extractor, extractor.specs(), texts)
    actual = [*rows_of(extractor, texts[:3]), {s.name: 0 for s in extractor.specs()}]
    for name, counts in predicted.items():
        assert counts.tolist() == [rows[name] for rows in actual], name


def test_a_store_s_offsets_are_the_predicted_rows(synthetic_corpus, layered_store: Path) -> None:  # type: ignore[no-untyped-def]
    root, _ = synthetic_corpus
    store = FeatureStore.open(layered_store)
    sources = audio_sources(store.manifest, root)
    texts = [str(t) for t in store.manifest.column("transcript")]
    checked = 0
    for name in store.feature_sets():
        attrs = store.info(name).attrs
        model = str(attrs["model"])
        if attrs["modality"] == "audio":
            extractor = SpeechExtractor(SpeechOptions(model=model, precision="fp32"))
            predicted = predicted_rows(extractor, attrs["level"], sources)
        else:
            extractor = build_extractor("bert", model=model, precision="fp32")
            predicted = predicted_rows(extractor, attrs["level"], texts)
        assert np.diff(store.read(name).offsets).tolist() == predicted.tolist(), name
        checked += 1
    assert checked >= 2
