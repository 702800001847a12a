"""`--text-source asr`: Whisper transcripts into the store, text sets extracted from them
beside the gold ones (own names, own fingerprints), resumed, repaired, their WER; and training on
them (kind aliases keep meaning gold text, the run record keeps the WER)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from ser.cache import FeatureStore
from ser.corpus.wer import transcripts_wer, word_error_rate
from ser.errors import ConfigError, FingerprintMismatch
from ser.extract.asr import WhisperAsr
from ser.extract.run import ExtractConfig, extract_features
from ser.train.features import resolve_features
from tests.stores import damage_chunk

QUIET = Console(quiet=True)


def _config(tiny_models: Any, **over: Any) -> ExtractConfig:
    options: dict[str, Any] = {
        "features": ("mpnet",),
        "options": {"mpnet": {"model": str(tiny_models.mpnet)}},
        "device": "cpu",
        "progress": False,
        "text_source": "asr",
        "asr_model": str(tiny_models.whisper),
        "asr_max_new_tokens": 4,
    }
    options.update(over)
    return ExtractConfig(**options)


def _gold(tiny_models: Any) -> ExtractConfig:
    return _config(tiny_models, text_source="gold", asr_model=None, asr_max_new_tokens=None)


@pytest.fixture(scope="module")
def asr_store(short_corpus, tiny_models, tmp_path_factory) -> tuple[Path, Any, str]:
    """A store with the gold mpnet set, then the ASR transcripts and mpnet@asr set; the
    gold set's checksum taken between the two runs."""
    root, _ = short_corpus
    path = tmp_path_factory.mktemp("asr") / "f.zarr"
    extract_features(root, path, _gold(tiny_models), QUIET)
    gold_sum = FeatureStore.open(path).checksum("tiny-mpnet")
    report = extract_features(root, path, _config(tiny_models), QUIET)
    return path, report, gold_sum


def test_asr_sets_beside_gold_with_asr_provenance(asr_store, tiny_models) -> None:
    path, report, gold_sum = asr_store
    store = FeatureStore.open(path)
    assert report.extracted == ("tiny-mpnet@asr-tiny-whisper",)
    assert store.transcript_sets() == ["asr-tiny-whisper"]
    assert store.feature_sets() == ["tiny-mpnet", "tiny-mpnet@asr-tiny-whisper"]
    gold, asr = store.info("tiny-mpnet"), store.info("tiny-mpnet@asr-tiny-whisper")
    assert gold.fingerprint != asr.fingerprint
    assert store.checksum("tiny-mpnet") == gold_sum  # gold set untouched
    assert "text_source" not in gold.attrs and "asr_model" not in gold.attrs
    transcripts = store.read_transcripts("asr-tiny-whisper")
    assert asr.attrs["text_source"] == "asr"
    assert asr.attrs["transcripts"] == "asr-tiny-whisper"
    assert asr.attrs["transcripts_fingerprint"] == transcripts.attrs["fingerprint"]
    assert asr.attrs["asr_model"] == str(tiny_models.whisper)
    assert asr.attrs["asr_max_new_tokens"] == 4 and len(asr.attrs["asr_weights_sha256"]) == 64
    # Every utterance transcribed once, the rows follow those transcripts, not the gold.
    assert len(transcripts.texts) == len(store.manifest) and not transcripts.failures
    assert report.transcripts.transcribed and report.transcripts.name == "asr-tiny-whisper"
    expected = transcripts_wer(store.manifest, transcripts).wer
    assert report.transcripts.wer == pytest.approx(expected)


def test_second_run_does_nothing(asr_store, short_corpus, tiny_models, monkeypatch) -> None:
    path, _, _ = asr_store
    root, _ = short_corpus

    def fail(*_: Any, **__: Any) -> None:
        raise AssertionError("transcribed again")

    monkeypatch.setattr(WhisperAsr, "transcribe", fail)
    again = extract_features(root, path, _config(tiny_models), QUIET)
    assert again.nothing_to_do and again.extracted == ()
    assert again.transcripts is not None and not again.transcripts.transcribed


def test_transcripts_an_older_ser_named_otherwise_are_found_by_fingerprint(
    asr_store, short_corpus, tiny_models, monkeypatch, tmp_path
) -> None:
    path, _, _ = asr_store
    root, _ = short_corpus
    # The same weights in another folder: another name, the same fingerprint.
    moved = tmp_path / "whisper-moved"
    shutil.copytree(tiny_models.whisper, moved)

    def fail(*_: Any, **__: Any) -> None:
        raise AssertionError("transcribed again")

    monkeypatch.setattr(WhisperAsr, "transcribe", fail)
    again = extract_features(root, path, _config(tiny_models, asr_model=str(moved)), QUIET)
    assert again.nothing_to_do and again.transcripts.name == "asr-tiny-whisper"
    assert FeatureStore.open(path).transcript_sets() == ["asr-tiny-whisper"]


def test_other_asr_settings_are_refused(asr_store, short_corpus, tiny_models) -> None:
    path, _, _ = asr_store
    root, _ = short_corpus
    with pytest.raises(FingerprintMismatch, match="asr_max_new_tokens: 4 -> 5"):
        extract_features(root, path, _config(tiny_models, asr_max_new_tokens=5), QUIET)


def test_kind_alias_means_gold_and_asr_set_by_name(asr_store) -> None:
    store = FeatureStore.open(asr_store[0])
    (gold,) = resolve_features(store, ["mpnet"])
    (asr,) = resolve_features(store, ["tiny-mpnet@asr-tiny-whisper"])
    assert gold.name == "tiny-mpnet" and asr.name == "tiny-mpnet@asr-tiny-whisper"


@pytest.mark.slow
def test_transcription_resumes_where_it_stopped(
    asr_store, short_corpus, tiny_models, tmp_path, monkeypatch
) -> None:
    path, _, _ = asr_store
    root, _ = short_corpus
    copy = tmp_path / "f.zarr"
    shutil.copytree(path, copy)
    store = FeatureStore.open(copy, mode="a")
    done = store.read_transcripts("asr-tiny-whisper")
    store.delete_feature_set("tiny-mpnet@asr-tiny-whisper")
    store.delete_transcripts("asr-tiny-whisper")
    store.begin_transcripts("asr-tiny-whisper", done.attrs)  # as a killed run left it
    kept = {i: done.texts[i] for i in range(0, len(done.texts), 2)}  # 25 left: 2 batches
    store.write_transcripts("asr-tiny-whisper", kept)

    seen: list[int] = []
    transcribe = WhisperAsr.transcribe

    def counting(self: WhisperAsr, waves: Any) -> list[str]:
        seen.append(len(waves))
        return transcribe(self, waves)

    monkeypatch.setattr(WhisperAsr, "transcribe", counting)
    extract_features(root, copy, _config(tiny_models, asr_batch_size=16), QUIET)
    assert sum(seen) == len(done.texts) - len(kept) and max(seen) <= 16
    resumed = FeatureStore.open(copy)
    assert resumed.read_transcripts("asr-tiny-whisper").texts == done.texts
    assert resumed.checksum("tiny-mpnet@asr-tiny-whisper") == FeatureStore.open(path).checksum(
        "tiny-mpnet@asr-tiny-whisper"
    )


@pytest.mark.slow
def test_repair_transcribes_damaged_asr_transcripts_again(
    asr_store, short_corpus, tiny_models, tmp_path
) -> None:
    """`--repair` on a store whose transcripts `verify` finds damaged: transcribed again,
    to the same texts; the text set built on them, not damaged, is left alone."""
    path, _, _ = asr_store
    root, _ = short_corpus
    store = tmp_path / "f.zarr"
    shutil.copytree(path, store)
    fs = FeatureStore.open(store)
    before = fs.read_transcripts("asr-tiny-whisper").texts
    damage_chunk(fs, "transcripts/asr-tiny-whisper/text")
    assert fs.verify()[0].startswith("transcripts asr-tiny-whisper: ")

    report = extract_features(root, store, _config(tiny_models, repair=True), QUIET)
    assert report.transcripts is not None and report.transcripts.transcribed
    assert report.extracted == () and report.repaired == ()  # the text set was not damaged
    fs = FeatureStore.open(store)
    assert fs.verify() == [] and fs.read_transcripts("asr-tiny-whisper").texts == before


@pytest.mark.slow
def test_unreadable_audio_fails_its_transcript_and_text_rows(tiny_models, tmp_path) -> None:
    """On a corpus of 15 utterances, one of them unreadable."""
    from ser.synth.corpus import SynthConfig, write_corpus

    root = tmp_path / "IEMOCAP_full_release"
    truth = write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(3, 3)))
    utt = next(u for u in truth.utterances if u.wav_path is not None)
    utt.wav_path.write_bytes(b"RIFF not a wav")
    report = extract_features(root, tmp_path / "f.h5", _config(tiny_models), QUIET)
    store = FeatureStore.open(tmp_path / "f.h5")
    row = store.manifest.index(utt.utt_id)
    transcripts = store.read_transcripts("asr-tiny-whisper")
    assert list(transcripts.failures) == [row] and transcripts.texts[row] == ""
    assert report.transcripts is not None and report.transcripts.failed == 1
    (asr, *_), (text, utt_id, reason) = report.failures  # transcript first, then text set
    assert asr == "asr-tiny-whisper" and report.failures[0][1] == utt.utt_id
    assert (text, utt_id) == ("tiny-mpnet@asr-tiny-whisper", utt.utt_id)
    assert "could not be transcribed" in reason and report.exit_code == 1


def test_word_error_rate_by_hand() -> None:
    wer = word_error_rate(["a b c d"], ["a x c"])
    assert wer.wer == 0.5 and (wer.substitutions, wer.deletions, wer.insertions) == (1, 1, 0)
    # Case and punctuation are not errors; an empty gold transcript has no words to count.
    both = word_error_rate(["Hello, world!", ""], ["hello world", "anything"])
    assert both.wer == 0.0 and both.utterances == 1 and both.words == 2
    assert word_error_rate(["a b"], [""]).wer == 1.0
    with pytest.raises(ValueError, match="undefined"):
        word_error_rate([""], ["x"])
    with pytest.raises(ValueError, match="1 references but 2"):
        word_error_rate(["a"], ["a", "b"])


def test_transcripts_wer_over_rows(asr_store, tmp_path) -> None:
    path, _, _ = asr_store
    copy = tmp_path / "f.zarr"
    shutil.copytree(path, copy)
    store = FeatureStore.open(copy, mode="a")
    gold = [str(t) for t in store.manifest.column("transcript")]
    attrs = store.transcript_attrs("asr-tiny-whisper")
    store.delete_transcripts("asr-tiny-whisper")
    store.begin_transcripts("asr-tiny-whisper", attrs)
    # Row 0 recognised with its first word missing, every other row exactly.
    first = gold[0].split()
    texts = {i: t for i, t in enumerate(gold)} | {0: " ".join(first[1:])}
    store.write_transcripts("asr-tiny-whisper", texts)
    store.finish_transcripts("asr-tiny-whisper")
    stored = store.read_transcripts("asr-tiny-whisper")
    assert transcripts_wer(store.manifest, stored, [0]).wer == pytest.approx(1 / len(first))
    assert transcripts_wer(store.manifest, stored, list(range(1, len(gold)))).wer == 0.0
    total = sum(len(t.split()) for t in gold)
    assert transcripts_wer(store.manifest, stored).wer == pytest.approx(1 / total)


def test_asr_options_without_asr_source_are_refused() -> None:
    with pytest.raises(ConfigError, match="need --text-source asr"):
        ExtractConfig(asr_model="x")
    with pytest.raises(ConfigError, match="--text-source 'bad'"):
        ExtractConfig(text_source="bad")
    with pytest.raises(ConfigError, match="at least 1"):
        ExtractConfig(text_source="asr", asr_batch_size=0)


def test_train_on_asr_text_records_its_wer_and_report_shows_it(asr_store, tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from ser.cli import main
    from ser.corpus.labels import LABEL_SETS

    path, _, _ = asr_store
    name = "tiny-mpnet@asr-tiny-whisper"
    for run, features in (("asr", name), ("gold", "mpnet")):
        args = [
            "train",
            "--store",
            str(path),
            "--features",
            features,
            "--fusion",
            "none",
            "--classes",
            "4",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--protocol",
            "session5",
            "--seeds",
            "1",
            "--out",
            str(tmp_path),
            "--name",
            run,
        ]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert (f"{name}: ASR transcripts asr-tiny-whisper, WER" in result.stderr) == (run == "asr")
    record = json.loads((tmp_path / "asr" / "run.json").read_text())
    entry = record["asr"][name]
    assert entry["transcripts"] == "asr-tiny-whisper"
    store = FeatureStore.open(path)
    labels = np.asarray(store.manifest.column("label")).astype(str)
    rows = np.flatnonzero(np.isin(labels, list(LABEL_SETS["4"].mapping)))
    stored = store.read_transcripts("asr-tiny-whisper")
    expected = transcripts_wer(store.manifest, stored, rows.tolist())
    assert entry["wer"] == pytest.approx(expected.wer) and entry["words"] == expected.words
    assert "asr" not in json.loads((tmp_path / "gold" / "run.json").read_text())

    result = CliRunner().invoke(main, ["report", str(tmp_path / "asr"), str(tmp_path / "gold")])
    assert result.exit_code == 0, result.output
    header, _, asr_row, gold_row = result.stdout.strip().splitlines()[:4]  # then the legend
    assert "| settings | ASR WER | mean UA |" in header
    assert f"| {100 * expected.wer:.2f} |" in asr_row and "| - |" in gold_row
    csv = CliRunner().invoke(main, ["report", str(tmp_path / "asr"), "--format", "csv"])
    assert csv.stdout.splitlines()[0].startswith(
        "run,features,fusion,protocol,classes,settings,asr_wer,mean_ua"
    )


def test_predict_transcribes_with_the_runs_own_recogniser(
    asr_store, short_corpus, tiny_models, tmp_path
) -> None:
    import json

    from click.testing import CliRunner

    from ser.cli import main
    from ser.synth.tiny import save_tiny_whisper

    path, _, _ = asr_store
    _, truth = short_corpus
    args = [
        "train",
        "--store",
        str(path),
        "--features",
        "tiny-mpnet@asr-tiny-whisper",
        "--fusion",
        "none",
        "--classes",
        "4",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--protocol",
        "session5",
        "--seeds",
        "1",
        "--out",
        str(tmp_path),
        "--name",
        "r",
    ]
    assert CliRunner().invoke(main, args).exit_code == 0
    wav = str(next(u.wav_path for u in truth.utterances if u.wav_path is not None))
    predict = ["predict", "--run", str(tmp_path / "r"), wav, "--device", "cpu", "--json"]
    result = CliRunner().invoke(main, predict)
    assert result.exit_code == 0, result.output
    (p,) = json.loads(result.stdout.strip().splitlines()[-1])["predictions"]
    assert p["transcript_source"] == "asr" and p["label"] is not None
    store = FeatureStore.open(path)
    row = next(i for i, w in enumerate(store.manifest.column("wav")) if wav.endswith(str(w)))
    assert p["transcript"] == store.read_transcripts("asr-tiny-whisper").texts[row]

    other = save_tiny_whisper(tmp_path / "other-whisper", seed=1)
    refused = CliRunner().invoke(main, [*predict, "--asr", str(other)])
    assert refused.exit_code == 2 and "asr_weights_sha256" in refused.stderr


def test_sweep_tables_name_the_asr_transcripts_and_their_wer() -> None:
    import doctest

    import ser.sweep.report
    from ser.runs.record import RunRecord
    from ser.sweep.report import asr_line

    def run(asr: dict[str, dict[str, Any]] | None = None) -> RunRecord:
        return RunRecord.from_json(
            {"name": "r", "config": {}, "protocol": "loso", "classes": [], "asr": asr}
        )

    asr = run({"m@asr-w": {"transcripts": "asr-w", "wer": 0.125}})
    unknown = run({"b@asr-v": {"transcripts": "asr-v", "wer": None}})
    assert asr_line([run(), run({})]) == ""
    assert asr_line([asr, unknown]) == (
        "Text from ASR transcripts: asr-w (WER 12.50 %), asr-v (WER unknown)."
    )
    assert doctest.testmod(ser.sweep.report).failed == 0


def test_asr_text_sets_of_any_layer_and_pool(
    asr_store, short_corpus, tiny_models, tmp_path, monkeypatch
) -> None:
    path, _, _ = asr_store
    root, _ = short_corpus
    copy = tmp_path / "f.zarr"
    shutil.copytree(path, copy)
    monkeypatch.setattr(WhisperAsr, "transcribe", lambda *_: pytest.fail("transcribed again"))
    options = {"text": {"model": str(tiny_models.mpnet), "layers": "1", "pool": "mean"}}
    report = extract_features(
        root, copy, _config(tiny_models, features=("text",), options=options), QUIET
    )
    names = ("tiny-mpnet.L1@asr-tiny-whisper", "tiny-mpnet.L1.mean@asr-tiny-whisper")
    assert report.extracted == names
    store = FeatureStore.open(copy)
    tokens, means = store.read(names[0]), store.read(names[1])
    assert means.attrs["pool"] == "mean" and means.attrs["transcripts"] == "asr-tiny-whisper"
    assert (
        tokens.attrs["transcripts_fingerprint"]
        == store.transcript_attrs("asr-tiny-whisper")["fingerprint"]
    )
    for row in (0, len(store.manifest) - 1):
        expected = tokens.utterance(row).astype(np.float32).mean(axis=0)
        np.testing.assert_allclose(means.utterance(row)[0], expected, atol=2e-3, rtol=2e-3)
