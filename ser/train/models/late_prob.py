"""Zhou et al. (USC): a CNN on log-mel and a text classifier, fused on class probabilities.

    log-mel [B, T, F] -> 5 x (3x3 conv, LeakyReLU, 2x2 max-pool) -> masked mean over time
        -> Linear -> LeakyReLU -> Dropout -> Linear -> audio logits [B, C]
    text [B, D] (mean-pooled BERT) -> Linear -> tanh -> Dropout -> Linear -> text logits [B, C]
    logits = W_a softmax(audio logits) + W_t softmax(text logits)   (W_m: C x C linear layers)

(with the member dimension K in front of every tensor, `ser.train.nn`; the CNN keeps
its activations [B, K, C, T, F], members as channel groups). The paper's final softmax is
the one inside the cross-entropy. Paper settings (defaults): 5 conv layers with max
pooling, 2 linear layers, LeakyReLU, dropout 0.6; 5 classes and a random 70/20/10 split
(`train_defaults`). Not in the paper (ours): the channels (32, 64, 128, 256, 256) and
the linear width 256 (`d_model`).

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

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ser.train.batch import Batch, InputSpec
from ser.train.losses import member_cross_entropy
from ser.train.models.base import ModelOutput, SerModel, call_unstacked, unstacked_loss
from ser.train.models.config import ModelConfig, need
from ser.train.nn.conv import Conv2d
from ser.train.nn.layers import ensure_length, masked_mean
from ser.train.nn.noise import Dropper
from ser.train.nn.stacked import Linear


class MaskedConvBlock(nn.Module):
    """3x3 conv + LeakyReLU + 2x2 max-pool on [B, K, C, T, F] that ignores padded time steps."""

    def __init__(self, members: int, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = Conv2d(members, c_in, c_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = mask[:, :, None, :, None]  # [B, K, 1, T, 1]
        x = F.leaky_relu(self.conv(x.masked_fill(~keep, 0.0)))  # [B, K, C, T, F]
        b, k, c, t, f = x.shape
        x = x.masked_fill(~keep, float("-inf")).view(b, k * c, t, f)
        x = F.max_pool2d(x, 2, ceil_mode=True)  # [B, K C, T/2, F/2]
        x = x.view(b, k, c, *x.shape[-2:])
        pooled = F.max_pool1d(mask.float(), 2, ceil_mode=True) > 0  # [B, K, T/2]
        return x.masked_fill(~pooled[:, :, None, :, None], 0.0), pooled


class LogMelCNN(nn.Module):
    """The audio branch: VGG-style CNN over [time, mel] -> class logits."""

    def __init__(
        self, members: int, n_mels: int, channels: tuple[int, ...], hidden: int, n_classes: int
    ) -> None:
        super().__init__()
        ins = (1, *channels[:-1])
        self.blocks = nn.ModuleList(
            MaskedConvBlock(members, c_in, c_out) for c_in, c_out in zip(ins, channels, strict=True)
        )
        freq = n_mels
        for _ in channels:
            freq = -(-freq // 2)  # ceil: the pooled mel axis
        self.hidden = Linear(members, channels[-1] * freq, hidden)
        self.out = Linear(members, hidden, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, drop: Dropper) -> torch.Tensor:
        h = x.transpose(0, 1).unsqueeze(2)  # [B, K, 1, T, F]
        m = mask.transpose(0, 1)  # [B, K, T]
        for block in self.blocks:
            h, m = block(h, m)  # [B, K, C, T', F'], [B, K, T']
        b, k, c, t, f = h.shape
        frames = h.permute(1, 0, 3, 2, 4).reshape(k, b, t, c * f)  # [K, B, T', C F']
        pooled = masked_mean(frames, m.transpose(0, 1))  # [K, B, C F']
        return self.out(drop(F.leaky_relu(self.hidden(pooled)), ("batch",)))  # [K, B, C]


class TextHead(nn.Module):
    """Linear -> tanh -> Dropout -> Linear on the mean-pooled text vector."""

    def __init__(self, members: int, d_in: int, hidden: int, n_classes: int) -> None:
        super().__init__()
        self.hidden = Linear(members, d_in, hidden)
        self.out = Linear(members, hidden, n_classes)

    def forward(self, x: torch.Tensor, drop: Dropper) -> torch.Tensor:
        return self.out(drop(torch.tanh(self.hidden(x)), ("batch",)))  # [K, B, C]


class LateProbFusion(SerModel):
    """Zhou et al.'s multimodal model (module docstring)."""

    def __init__(
        self, configs: Sequence[ModelConfig], inputs: list[InputSpec], n_classes: int
    ) -> None:
        super().__init__(configs, inputs, n_classes, unit="utterance")
        k, hidden = self.members, need(self.config.d_model)
        self.cnn = LogMelCNN(
            k, self.spec("audio").dim, need(self.config.cnn_channels), hidden, n_classes
        )
        self.text_head = TextHead(k, self.spec("text").dim, hidden, n_classes)
        self.audio_fuse = Linear(k, n_classes, n_classes)
        self.text_fuse = Linear(k, n_classes, n_classes)

    def branch(self, modality: str) -> nn.Module:
        """The audio CNN or the text head."""
        return self.cnn if modality == "audio" else self.text_head

    def branch_logits(self, batch: Batch, modality: str, drop: Dropper) -> torch.Tensor:
        """One branch's class logits [K, B, C]."""
        name = self.spec(modality).name
        if modality == "text":
            return self.text_head(batch.x[name], drop)  # [K, B, C]
        x, mask = ensure_length(batch.x[name], batch.mask[name])  # [K, B, T, F], [K, B, T]
        return self.cnn(x, mask, drop)  # [K, B, C]

    def stages(self) -> list[tuple[str, nn.Module]]:
        """With `staged` (the paper): each branch alone, audio first, then the whole model."""
        if not self.config.staged:
            return []
        return [(m, BranchStage(self, m)) for m in ("audio", "text")]

    def forward(self, batch: Batch) -> ModelOutput:
        drop = self.drop(batch)
        audio_logits = self.branch_logits(batch, "audio", drop)  # [K, B, C]
        text_logits = self.branch_logits(batch, "text", drop)  # [K, B, C]
        fused = self.audio_fuse(torch.softmax(audio_logits, dim=-1)) + self.text_fuse(
            torch.softmax(text_logits, dim=-1)
        )  # [K, B, C]
        return ModelOutput(fused, {"audio": audio_logits, "text": text_logits})


class BranchStage(nn.Module):
    """The first training stage of one branch: that branch alone, cross-entropy on its own
    logits. Its parameters are the branch's only, so the other branch and the fusion
    layers stay as they are; the trained weights are the model's own (shared modules).

    The interface the training loop drives: forward(batch) -> ModelOutput, loss [K],
    set_epoch, eval_mask.
    """

    def __init__(self, model: LateProbFusion, modality: str) -> None:
        super().__init__()
        if modality not in ("audio", "text"):
            raise ValueError(f"no {modality!r} branch: audio or text")
        self.modality = modality
        self.branch = model.branch(modality)
        self._model = (model,)  # a tuple: not registered, its other parameters are not ours
        self.eval_mask: object = None

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        return None

    def __call__(self, batch: Batch) -> ModelOutput:
        if batch.sizes is None:  # one member's own batch (tests, one-off use)
            return call_unstacked(self, batch, self._model[0].dropout_p)
        return super().__call__(batch)

    def forward(self, batch: Batch) -> ModelOutput:
        model = self._model[0]
        drop = Dropper(batch.noise if self.training else None, model.dropout_p)
        return ModelOutput(model.branch_logits(batch, self.modality, drop))  # [K, B, C]

    def loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        if batch.sizes is None:
            return unstacked_loss(self, out, batch)
        return member_cross_entropy(out.logits, batch.labels)
