"""s3prl's featurizer: a learnt softmax-weighted sum of an encoder's stored layers.

    x [..., L, D] -> layer norm over D (no affine) -> sum_l softmax(w)_l x_l -> [..., D]

One weight per layer, initialised to zero (each layer 1/L at the start). Each layer is
layer-normed over its feature dimension first, without learnt scale or shift: s3prl's
`layer_norm` (`normalize`) choice. Hidden states of one encoder differ in scale by layer
(wav2vec2-family norms grow with depth, some layers carry outlier dimensions), so without
it a louder layer would dominate the sum at an equal weight, and the softmax weights
would measure scale instead of what a layer is worth; without an affine part the
weights alone say how much each layer counts, comparable across layers and runs.

`LayerMixes` holds one `LayerMix` per layered input of a model (`InputSpec.layers` > 1);
`SerModel` applies them to its batch before its family's forward sees it.

>>> import torch
>>> mix = LayerMix(3)
>>> x = torch.randn(2, 5, 3, 8)  # [B, T, L, D]
>>> mix(x).shape, mix.softmax().tolist()  # [B, T, D]; every layer 1/3 at the start
(torch.Size([2, 5, 8]), [0.3333333432674408, 0.3333333432674408, 0.3333333432674408])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ser.models.batch import InputSpec


class LayerMix(nn.Module):
    """The weighted sum of `layers` layers (module docstring)."""

    def __init__(self, layers: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(layers))  # [L]

    def softmax(self) -> torch.Tensor:
        """[L] each layer's share of the sum."""
        return self.weights.softmax(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., L, D] -> [..., D]. A padded (all-zero) row stays zero."""
        normed = F.layer_norm(x, x.shape[-1:])  # [..., L, D]
        return torch.matmul(self.softmax().to(normed.dtype), normed)  # [L] @ [..., L, D]


class LayerMixes(nn.Module):
    """A `LayerMix` per layered input, by the input's name (`key`: without the dots that
    module names cannot hold); `of=`: the mixes of the model this one is a stage of,
    shared (the stage trains the model's own weights)."""

    mixes: nn.ModuleDict

    def __init__(self, inputs: Sequence[InputSpec], of: LayerMixes | None = None) -> None:
        super().__init__()
        layered = [s for s in inputs if s.layers > 1]
        self.names = {key(s.name): s.name for s in layered}
        if len(self.names) != len(layered):
            raise ValueError(f"two layered inputs share a key: {[s.name for s in layered]}")
        shared = {} if of is None else dict(of.mixes.items())
        mixes: dict[str, nn.Module] = {}
        for spec in layered:
            k = key(spec.name)
            mixes[k] = shared[k] if k in shared else LayerMix(spec.layers)
        self.mixes = nn.ModuleDict(mixes)

    def forward(self, x: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch's inputs with each layered one summed: [..., L, D] -> [..., D]."""
        out = dict(x)
        for k, name in self.names.items():
            out[name] = self.mixes[k](x[name])
        return out


def key(name: str) -> str:
    """An input's name as a module name: `hubert.L0-12` -> `hubert_L0-12`."""
    return name.replace(".", "_")


def learnt_weights(
    state: Mapping[str, torch.Tensor], inputs: Sequence[InputSpec], prefix: str
) -> dict[str, list[float]]:
    """Each layered input's softmax weights [w_0..w_L-1] (layer order) in a model's
    `state` (its `state_dict`, the mixes under `prefix`)."""
    return {
        s.name: state[f"{prefix}.mixes.{key(s.name)}.weights"].float().softmax(-1).tolist()
        for s in inputs
        if s.layers > 1
    }
