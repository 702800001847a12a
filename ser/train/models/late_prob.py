"""Zhou et al. (USC): a CNN on log-mel and a text classifier, fused on class probabilities.

    log-mel [B, T, F] -> 5 x (3x3 conv, LeakyReLU, 2x2 max-pool) -> masked mean over time
        -> Linear -> LeakyReLU -> Dropout -> Linear -> audio logits [B, C]
    text [B, D] (mean-pooled BERT) -> Linear -> tanh -> Dropout -> Linear -> text logits [B, C]
    logits = W_a softmax(audio logits) + W_t softmax(text logits)   (W_m: C x C linear layers)

The paper's final softmax is the one inside the cross-entropy. Paper settings
(defaults): 5 conv layers with max pooling, 2 linear layers, LeakyReLU, dropout 0.6;
5 classes and a random 70/20/10 split (`train_defaults`). Not in the paper (ours): the
channels (32, 64, 128, 256, 256) and the linear width 256 (`d_model`).

Departures, because features are cached: the paper fine-tunes BERT; here the text head
sits on frozen mean-pooled token states, shaped like BERT's pooler + classification head
(dense, tanh, dropout, linear). The paper pads spectrograms to one length and flattens
the CNN output; here the CNN runs on variable lengths and averages over real time steps,
so padding never changes the outputs: padded frames are zeroed before every conv (exactly
what the conv's own zero padding sees at a sequence end) and set to -inf before every
max-pool, whose ceil mode then matches pooling the unpadded sequence. Log-mel
normalisation by training-set statistics (the paper) is the data side's
standardisation, not the model's.

Training, as the paper's (`staged`, the default): each branch is first trained alone on
its own logits (`BranchStage`: an optimizer over it sees that branch's parameters only),
then the combined model is trained again, all of it. `staged=False` trains the combined
model in one stage; with `loss="perspective"` (fused + audio + text CE) each branch keeps
its own supervision there.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ser.train.batch import Batch, InputSpec
from ser.train.losses import cross_entropy
from ser.train.models.base import ModelOutput, SerModel
from ser.train.models.config import ModelConfig, need
from ser.train.models.layers import ensure_length, masked_mean


class MaskedConvBlock(nn.Module):
    """3x3 conv + LeakyReLU + 2x2 max-pool on [B, C, T, F] that ignores padded time steps."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = mask[:, None, :, None]  # [B, 1, T, 1]
        x = F.leaky_relu(self.conv(x.masked_fill(~keep, 0.0)))  # [B, C, T, F]
        x = F.max_pool2d(x.masked_fill(~keep, float("-inf")), 2, ceil_mode=True)  # [B, C, T/2, F/2]
        pooled = F.max_pool1d(mask[:, None, :].float(), 2, ceil_mode=True)[:, 0] > 0  # [B, T/2]
        return x.masked_fill(~pooled[:, None, :, None], 0.0), pooled


class LogMelCNN(nn.Module):
    """The audio branch: VGG-style CNN over [time, mel] -> class logits."""

    def __init__(
        self, n_mels: int, channels: tuple[int, ...], hidden: int, dropout: float, n_classes: int
    ) -> None:
        super().__init__()
        ins = (1, *channels[:-1])
        self.blocks = nn.ModuleList(
            MaskedConvBlock(c_in, c_out) for c_in, c_out in zip(ins, channels, strict=True)
        )
        freq = n_mels
        for _ in channels:
            freq = -(-freq // 2)  # ceil: the pooled mel axis
        self.head = nn.Sequential(
            nn.Linear(channels[-1] * freq, hidden),
            nn.LeakyReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(1)  # [B, 1, T, F]
        for block in self.blocks:
            h, mask = block(h, mask)  # [B, C, T', F'], [B, T']
        b, c, t, f = h.shape
        frames = h.permute(0, 2, 1, 3).reshape(b, t, c * f)  # [B, T', C F']
        return self.head(masked_mean(frames, mask))  # [B, n_classes]


class LateProbFusion(SerModel):
    """Zhou et al.'s multimodal model (module docstring)."""

    def __init__(self, config: ModelConfig, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs, n_classes, unit="utterance")
        hidden, dropout = need(config.d_model), need(config.dropout)
        self.cnn = LogMelCNN(
            self.spec("audio").dim, need(config.cnn_channels), hidden, dropout, n_classes
        )
        self.text_head = nn.Sequential(
            nn.Linear(self.spec("text").dim, hidden),
            nn.Tanh(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )
        self.audio_fuse = nn.Linear(n_classes, n_classes)
        self.text_fuse = nn.Linear(n_classes, n_classes)

    def branch(self, modality: str) -> nn.Module:
        """The audio CNN or the text head."""
        return self.cnn if modality == "audio" else self.text_head

    def branch_logits(self, batch: Batch, modality: str) -> torch.Tensor:
        """One branch's class logits [B, C]."""
        name = self.spec(modality).name
        if modality == "text":
            return self.text_head(batch.x[name])  # [B, C]
        x, mask = ensure_length(batch.x[name], batch.mask[name])  # [B, T, F], [B, T]
        return self.cnn(x, mask)  # [B, C]

    def stages(self) -> list[tuple[str, nn.Module]]:
        """With `staged` (the paper): each branch alone, audio first, then the whole model."""
        if not self.config.staged:
            return []
        return [(m, BranchStage(self, m)) for m in ("audio", "text")]

    def forward(self, batch: Batch) -> ModelOutput:
        audio_logits = self.branch_logits(batch, "audio")  # [B, C]
        text_logits = self.branch_logits(batch, "text")  # [B, C]
        fused = self.audio_fuse(torch.softmax(audio_logits, dim=-1)) + self.text_fuse(
            torch.softmax(text_logits, dim=-1)
        )  # [B, C]
        return ModelOutput(fused, {"audio": audio_logits, "text": text_logits})


class BranchStage(nn.Module):
    """The first training stage of one branch: that branch alone, cross-entropy on its own
    logits. Its parameters are the branch's only, so the other branch and the fusion
    layers stay as they are; the trained weights are the model's own (shared modules).

    The interface the training loop drives: forward(batch) -> ModelOutput, loss,
    set_epoch, eval_mask.
    """

    def __init__(self, model: LateProbFusion, modality: str) -> None:
        super().__init__()
        if modality not in ("audio", "text"):
            raise ValueError(f"no {modality!r} branch: audio or text")
        self.modality = modality
        self.branch = model.branch(modality)
        self._model = (model,)  # a tuple: not registered, its other parameters are not ours
        self.eval_mask: str | None = None

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        return None

    def forward(self, batch: Batch) -> ModelOutput:
        return ModelOutput(self._model[0].branch_logits(batch, self.modality))  # [B, C]

    def loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        return cross_entropy(out.logits, batch.labels)
