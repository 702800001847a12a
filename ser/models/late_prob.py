"""Zhou et al. (USC): a CNN on log-mel and a text classifier, fused on class probabilities.

    log-mel [B, T, F] -> 5 x (3x3 conv, LeakyReLU, 2x2 max-pool) -> masked mean over time
        -> Linear -> LeakyReLU -> Dropout -> Linear -> audio logits [B, C]
    text [B, D] (mean-pooled BERT) -> Linear -> tanh -> Dropout -> Linear -> text logits [B, C]
    logits = W_a softmax(audio logits) + W_t softmax(text logits)   (W_m: C x C linear layers)

The CNN keeps its activations [B, C, T, F] (channels, time, mel). The paper's final
softmax is the one inside the cross-entropy. Paper settings (defaults): 5 conv layers
with max pooling, 2 linear layers, LeakyReLU, dropout 0.6; 5 classes and a random
70/20/10 split (`FAMILY.train`). Not in the paper (ours): the channels
(32, 64, 128, 256, 256) and the linear width 256 (`d_model`).

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
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ser.cache.fingerprint import MODALITIES
from ser.errors import ConfigError
from ser.models.base import ModelOutput, SerModel
from ser.models.batch import Batch, InputSpec, Unit
from ser.models.config import (
    LOSSES,
    FamilyConfig,
    FeatureInfo,
    TrainDefaults,
    describe,
    option,
)
from ser.models.losses import cross_entropy
from ser.models.nn.blocks import MLP, Dropout, ensure_length, masked_mean
from ser.models.nn.layer_mix import LayerMixes
from ser.models.registry import Family
from ser.runtime.cost import FamilyCost


@dataclass(frozen=True)
class LateProbConfig(FamilyConfig):
    """Zhou et al., CNN on log-mel + text head, late fusion: --fusion late-prob."""

    FUSIONS: ClassVar[dict[str, tuple[str, ...]]] = {"late-prob": ()}
    loss: str = option("single", "perspective: each branch's own loss too.", choices=LOSSES)
    d_model: int = option(256, "Width of the linear layers (ours).", least=1)
    dropout: float = option(0.6, "Dropout (paper: 0.6).", least=0.0, below=1.0)
    cnn_channels: tuple[int, ...] = option((32, 64, 128, 256, 256), "Conv channels (ours).")
    staged: bool = option(True, "Each branch trained alone first, as the paper.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.cnn_channels or min(self.cnn_channels) < 1:
            raise ConfigError(f"cnn_channels must be positive numbers, got {self.cnn_channels}")

    def plan(self, features: Sequence[FeatureInfo]) -> tuple[Unit, list[InputSpec]]:
        """A frame-level audio set as a sequence (the CNN's time axis) and a text set as
        a vector (frozen features stand in for the paper's fine-tuned BERT)."""
        self.check_sets(features, "both")
        if any(f.modality == "audio" and f.level != "frame" for f in features):
            raise ConfigError(
                f"fusion 'late-prob' runs a CNN over time and needs a frame-level audio set "
                f"(e.g. logmel80); got {describe(features)}"
            )
        views = {"audio": "sequence", "text": "vector"}
        return "utterance", [
            InputSpec(f.name, f.modality, f.dim, views[f.modality])  # type: ignore[arg-type]
            for f in features
        ]


class MaskedConvBlock(nn.Module):
    """3x3 conv + LeakyReLU + 2x2 max-pool on [B, C, T, F] that ignores padded time steps."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = mask[:, None, :, None]  # [B, 1, T, 1]
        # Zeros at padded frames: what the conv's own zero padding puts past a sequence end.
        x = F.leaky_relu(self.conv(x.masked_fill(~keep, 0.0)))  # [B, C, T, F]
        # -inf: a padded frame never wins a pooling window that holds a real one.
        x = F.max_pool2d(x.masked_fill(~keep, float("-inf")), 2, ceil_mode=True)  # [B, C, T', F']
        pooled = F.max_pool1d(mask[:, None, :].float(), 2, ceil_mode=True)[:, 0] > 0  # [B, T']
        # Windows of padding only hold -inf: zero them, so nothing downstream sees an inf.
        return x.masked_fill(~pooled[:, None, :, None], 0.0), pooled


class LogMelCNN(nn.Module):
    """The audio branch: VGG-style CNN over [time, mel] -> class logits."""

    def __init__(
        self, n_mels: int, channels: tuple[int, ...], hidden: int, n_classes: int, dropout: float
    ) -> None:
        super().__init__()
        ins = (1, *channels[:-1])
        self.blocks = nn.ModuleList(
            MaskedConvBlock(c_in, c_out) for c_in, c_out in zip(ins, channels, strict=True)
        )
        freq = -(-n_mels // 2 ** len(channels))  # the mel axis after every ceil-mode 2x pool
        self.hidden = nn.Linear(channels[-1] * freq, hidden)
        self.dropout = Dropout(dropout)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x, mask = ensure_length(x, mask)  # [B, T, F], [B, T]; T >= 1 even for empty batches
        h, m = x.unsqueeze(1), mask  # [B, 1, T, F]
        for block in self.blocks:
            h, m = block(h, m)  # [B, C, T', F'], [B, T']
        b, c, t, f = h.shape
        frames = h.permute(0, 2, 1, 3).reshape(b, t, c * f)  # [B, T', C F']
        pooled = masked_mean(frames, m)  # [B, C F']; zeros for a sample with no frames
        return self.out(self.dropout(F.leaky_relu(self.hidden(pooled))))  # [B, n_classes]


def branch_logits(branch: nn.Module, modality: str, name: str, batch: Batch) -> torch.Tensor:
    """One branch's class logits [B, C] on its input `name` of `batch`."""
    if modality == "audio":
        return branch(batch.x[name], batch.mask[name])  # log-mel [B, T, F], mask [B, T]
    return branch(batch.x[name])  # text vector [B, D]


class LateProbFusion(SerModel):
    """Zhou et al.'s multimodal model (module docstring)."""

    def __init__(self, config: LateProbConfig, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs)
        self.config: LateProbConfig = config
        hidden, dropout, channels = config.d_model, config.dropout, config.cnn_channels
        self.cnn = LogMelCNN(self.spec("audio").dim, channels, hidden, n_classes, dropout)
        self.text_head = MLP(self.spec("text").dim, hidden, n_classes, dropout, act=torch.tanh)
        self.audio_fuse = nn.Linear(n_classes, n_classes)  # W_a
        self.text_fuse = nn.Linear(n_classes, n_classes)  # W_t

    def branch(self, modality: str) -> nn.Module:
        """The audio CNN or the text head."""
        if modality not in MODALITIES:
            raise ValueError(f"no {modality!r} branch: audio or text")
        return self.cnn if modality == "audio" else self.text_head

    def stage(self, modality: str) -> BranchStage:
        """The training stage of one branch alone (its module is this model's own)."""
        stage = BranchStage(self.branch(modality), self.config, self.spec(modality), self.mixes())
        stage.targets = self.targets  # the branch's outputs are laid out as the model's
        stage.n_classes = self.n_classes
        return stage

    def stages(self) -> list[tuple[str, nn.Module]]:
        """With `staged` (the paper): each branch alone, audio first, then the whole model."""
        return [(m, self.stage(m)) for m in MODALITIES] if self.config.staged else []

    def forward(self, batch: Batch) -> ModelOutput:
        audio = branch_logits(self.cnn, "audio", self.spec("audio").name, batch)  # [B, C]
        text = branch_logits(self.text_head, "text", self.spec("text").name, batch)  # [B, C]
        fused = self.audio_fuse(self.fused_in(audio)) + self.text_fuse(self.fused_in(text))
        return ModelOutput(fused, {"audio": audio, "text": text})  # fused: [B, C]

    def fused_in(self, logits: torch.Tensor) -> torch.Tensor:
        """What W_m reads of a branch's outputs: each head's, its class probabilities
        where it is categorical, its predictions as they are else (attributes)."""
        heads = self.targets.heads
        parts = self.split(logits)
        if len(parts) == 1:
            return logits.softmax(-1) if heads[0].probabilities else logits
        read = [p.softmax(-1) if h.probabilities else p for h, p in zip(heads, parts, strict=True)]
        return torch.cat(read, dim=-1)


class BranchStage(SerModel):
    """The first training stage of one branch: that branch alone, cross-entropy on its own
    logits, a `SerModel` of that branch's input. Its only submodules are the branch (and
    the model's layer mix of that input, if it has one), so it trains the model's own
    weights of that branch and nothing else; holding no reference to the model, a deep
    copy (the ensemble's) is a working stage of the copied branch."""

    def __init__(
        self,
        branch: nn.Module,
        config: LateProbConfig,
        spec: InputSpec,
        layer_mix: LayerMixes | None = None,
    ) -> None:
        super().__init__(config, [spec], layer_mix)
        self.branch = branch

    def forward(self, batch: Batch) -> ModelOutput:
        spec = self.inputs[0]
        return ModelOutput(branch_logits(self.branch, spec.modality, spec.name, batch))

    def class_loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        return cross_entropy(out.logits, batch.labels, batch.class_weights, batch.soft)


# Zhou et al. table 2: Adam 1.5e-4, weight decay 1e-3, 15 epochs; batch size not given (32
# is ours). Their 5 classes and 70/20/10 random split are the `zhou` preset's.
TRAINING = TrainDefaults(15, 32, 1.5e-4, 1e-3)
# What it costs to train on the 2-core CPU (benchmarks/README.md, "How should a run's
# members share the CPU?"; `ser.runtime.execution` reads it).
COST = FamilyCost(
    # Stacking unmeasured: never (stack_width 0). An utterance-epoch's seconds in one
    # process at the demo's sizes (its cost follows the model's size and frames more than
    # the input width).
    rate=(6e-3, 0.0),
    # Its gain from processes is ~1.1x (4 members, 103 against 113 s): a process's
    # start-up (~4 s) is paid for from ~60 s of training.
    min_seconds=60.0,
    # A second thread: 1.3x, as MSMSER's (no figure of its own). Sweep cells one per
    # process: unmeasured.
    thread_gain=1.3,
)
# The suite's small late fusion (`Family.tiny`): staged as the paper, dropout off.
TINY = {"fusion": "late-prob", "d_model": 8, "cnn_channels": (2, 3), "dropout": 0.0}
FAMILY = Family("late_prob", LateProbConfig, LateProbFusion, TRAINING, COST, tiny=TINY)
