"""The GPU figures' inputs, made on the machine that measures: IEMOCAP-shaped corpora of
noise (durations of IEMOCAP's log-normal shape, five sessions of dialogs, transcripts
from ser's synthetic plan) written by every core, and encoders of the real sizes with
random weights (HuBERT-base, WavLM-large, MPNet-base, BERT-base) or, with `tiny`, the
tests' tiny ones. Nothing is downloaded; the compute is the real models'.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
import torch
from bench_extract import RATE, durations, save_hubert_base

from ser.synth.corpus import write_corpus_from_metadata
from ser.synth.tiny import VOCABULARY, save_tiny_hubert, save_tiny_speech, save_tiny_text

TURNS_A_DIALOG = 100  # IEMOCAP's dialogs hold 30-120 turns; ids keep three digits


def corpus(root: Path, seconds: float, seed: int = 0) -> float:
    """An IEMOCAP layout at `root` holding `seconds` of 16 kHz noise with a syllable-rate
    envelope; returns the audio's seconds (made once: an existing corpus is kept)."""
    lengths = durations(seconds)
    if not root.exists():
        meta = root.parent / f"{root.name}.csv"
        by_id = _metadata(meta, lengths)
        truth = write_corpus_from_metadata(root, meta, seed)
        jobs = [
            (str(u.wav_path), round(by_id[u.utt_id] * RATE), seed + i)
            for i, u in enumerate(truth.utterances)
        ]
        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            list(pool.map(_write_wav, jobs, chunksize=32))
    return float(sum(lengths))


def _metadata(path: Path, lengths: list[float]) -> dict[str, float]:
    """The metadata CSV `write_corpus_from_metadata` reads: dialogs of up to 100 turns
    over sessions 1-5, speakers alternating; each utterance's seconds by id."""
    by_id = {}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utt_id", "dialog", "session", "speaker_gender", "kind", "order",
                         "start", "end", "label"])  # fmt: skip
        start = 1.0
        for i, length in enumerate(lengths):
            d, turn = divmod(i, TURNS_A_DIALOG)
            session = d % 5 + 1
            dialog = f"Ses{session:02d}F_impro{d // 5 + 1:02d}"
            gender = "FM"[turn % 2]
            utt = f"{dialog}_{gender}{turn // 2:03d}"
            label = ("neu", "hap", "sad", "ang")[i % 4]
            writer.writerow([utt, dialog, session, gender, "impro", turn, f"{start:.4f}",
                             f"{start + length:.4f}", label])  # fmt: skip
            by_id[utt] = length
            start = 1.0 if turn == TURNS_A_DIALOG - 1 else start + length + 0.5
    return by_id


def _write_wav(job: tuple[str, int, int]) -> None:
    path, n, seed = job
    rng = np.random.default_rng(seed)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / RATE)
    soundfile.write(path, (0.1 * rng.standard_normal(n) * envelope).astype(np.float32), RATE)


def models(folder: Path, tiny: bool) -> dict[str, Path]:
    """Speech and text encoders by role: hubert, wavlm, mpnet, bert (made once)."""
    folder.mkdir(parents=True, exist_ok=True)
    makers = {
        "hubert": (lambda p: save_tiny_hubert(p)) if tiny else save_hubert_base,
        "wavlm": (lambda p: save_tiny_speech(p, "wavlm")) if tiny else _wavlm_large,
        "mpnet": (lambda p: save_tiny_text(p, "mpnet")) if tiny else _text_base("mpnet"),
        "bert": (lambda p: save_tiny_text(p, "bert")) if tiny else _text_base("bert"),
    }
    out = {}
    for role, make in makers.items():
        path = folder / role
        if not (path / "config.json").exists():
            make(path)
        out[role] = path
    return out


def _wavlm_large(folder: Path) -> Path:
    """microsoft/wavlm-large's configuration (24 layers, 1024 wide, stable layer norm),
    random weights, and its preprocessing (16 kHz, normalised)."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    config = WavLMConfig(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True,
        conv_bias=True, num_buckets=320, max_bucket_distance=800,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        WavLMModel(config).eval().save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=RATE, do_normalize=True).save_pretrained(folder)
    return folder


def _text_base(kind: str):  # type: ignore[no-untyped-def]
    """A maker of BERT-base or MPNet-base with random weights and a WordPiece vocabulary of
    the synthetic transcripts' words, padded to the real vocabulary's size."""

    def make(folder: Path) -> Path:
        from transformers import (
            BertConfig,
            BertModel,
            BertTokenizer,
            MPNetConfig,
            MPNetModel,
            MPNetTokenizer,
        )

        from ser.synth.tiny import wordpiece_vocab

        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        if kind == "mpnet":
            specials = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]
        words = [w for w in wordpiece_vocab(VOCABULARY) if w not in specials]
        size = 30522 if kind == "bert" else 30527
        tokens = [*specials, *words, *(f"[unused{i}]" for i in range(size))][:size]
        vocab = {t: i for i, t in enumerate(tokens)}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            if kind == "bert":
                BertModel(BertConfig(), add_pooling_layer=False).eval().save_pretrained(folder)
                BertTokenizer(vocab=vocab, model_max_length=512).save_pretrained(folder)
            else:
                MPNetModel(MPNetConfig(), add_pooling_layer=False).eval().save_pretrained(folder)
                MPNetTokenizer(vocab=vocab, model_max_length=512).save_pretrained(folder)
        return folder

    return make
