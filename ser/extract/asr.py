"""Speech recognition with a Whisper model through transformers (hub id or local folder).

Greedy decoding (no sampling): the same audio always gives the same text. `provenance()`
(model, weights checksum, decoding settings) goes into the text sets of its transcripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ser.cache.fingerprint import model_location
from ser.cache.model_names import DEFAULT_ASR_MODEL
from ser.extract.base import load_pretrained, weights_checksum
from ser.extract.loading import quiet_transformers

#: Whisper's input rate.
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class AsrOptions:
    """model: a Whisper hub id or local folder; language: forced language token (None:
    the model's own choice); max_new_tokens: longest transcript in tokens."""

    model: str = DEFAULT_ASR_MODEL
    language: str | None = "en"
    max_new_tokens: int = 128


class WhisperAsr:
    """Whisper transcription; `load(device)` once, then `transcribe` many times."""

    def __init__(self, options: AsrOptions | None = None) -> None:
        self.options = options or AsrOptions()
        # Any: the Auto classes pick Whisper's model and processor only when they load.
        self._model: Any = None
        self._processor: Any = None
        self.device = torch.device("cpu")

    def load(self, device: torch.device) -> None:
        from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

        name = self.options.model
        self._processor = load_pretrained(AutoProcessor.from_pretrained, name, "ASR processor")
        model = load_pretrained(
            AutoModelForSpeechSeq2Seq.from_pretrained, name, "ASR model", dtype=torch.float32
        )
        self._model = model.eval()
        self.move(device)

    def move(self, device: torch.device) -> None:
        """Move the loaded model to `device` (loaded on the CPU for its checksum first)."""
        if self._model is None:
            raise RuntimeError("asr: call load(device) before move()")
        self._model = self._model.to(device)
        self.device = device

    def provenance(self) -> dict[str, Any]:
        """What makes these transcripts: goes into text feature sets' fingerprints."""
        import transformers

        if self._model is None:
            raise RuntimeError("asr: call load(device) before provenance()")
        return {
            "asr_model": model_location(self.options.model),  # a folder: found from anywhere
            "asr_weights_sha256": weights_checksum(self._model),
            "asr_language": self.options.language,
            "asr_max_new_tokens": self.options.max_new_tokens,
            "asr_decoding": "greedy",
            "transformers_version": transformers.__version__,
        }

    @torch.no_grad()
    def transcribe(self, waves: Sequence[np.ndarray]) -> list[str]:
        """One transcript per 16 kHz mono waveform, stripped of special tokens."""
        if self._model is None:
            raise RuntimeError("asr: call load(device) before transcribe()")
        if not waves:
            return []
        inputs = self._processor(
            [np.asarray(w, np.float32) for w in waves],
            sampling_rate=SAMPLE_RATE,
            return_tensors="pt",
            return_attention_mask=True,
        )
        features = inputs.input_features.to(self.device)  # [B, n_mels, 3000]
        # The prompt (start, language, task, no-timestamps) shares the decoder's positions.
        room = int(self._model.config.max_target_positions) - 4
        kwargs: dict[str, Any] = {"max_new_tokens": min(self.options.max_new_tokens, room)}
        if self.options.language:
            kwargs["language"] = self.options.language
        with quiet_transformers():  # generate's deprecation chatter, once per batch
            mask = inputs.attention_mask.to(self.device)
            ids = self._model.generate(features, attention_mask=mask, do_sample=False, **kwargs)
        texts = self._processor.batch_decode(ids, skip_special_tokens=True)
        return [" ".join(t.split()) for t in texts]
