"""Convolutions as matrix products of their windows, for the GPU's batched speech
front end (`ser.extract.wav2vec2`): cuDNN runs the wav2vec2 family's strided convs and
its grouped positional conv (768 channels, 16 groups, kernel 128) on generic kernels at
a few TFLOP/s (an H200's extraction profile: 57 % of the GPU's time in that one conv); a
product of the windows runs on the tensor cores, its kernel chosen without timing, so
the results stay the machine's whatever else it runs.

>>> import torch
>>> conv = torch.nn.Conv1d(8, 8, kernel_size=4, padding=2, groups=2)
>>> x = torch.randn(3, 8, 10)  # [B, C, T]
>>> torch.allclose(GroupedConvProduct(conv)(x), conv(x), atol=1e-5)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def strided_conv(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """`conv` over x [B, T, C_in] (time first) as one matrix product of its windows and
    its weight: [B, T', C_out] (a conv with padding, dilation or groups runs as itself)."""
    if conv.padding != (0,) or conv.dilation != (1,) or conv.groups != 1:
        return conv(x.transpose(1, 2)).transpose(1, 2)
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    windows = x.unfold(1, kernel, stride)  # [B, T', C_in, k]
    flat = windows.reshape(*windows.shape[:2], -1)  # [B, T', C_in k]
    return F.linear(flat, conv.weight.reshape(conv.out_channels, -1), conv.bias)


class GroupedConvProduct(nn.Module):
    """A stride-1 grouped `conv` (its padding, weight norm and bias kept) as one batched
    product per group of its windows: the same [B, C, T] -> [B, C_out, T'] map. Its
    windows take k times the input's memory (HuBERT-base, a 240-s batch: ~2.4 GB in
    fp16)."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        if conv.stride != (1,) or conv.dilation != (1,) or isinstance(conv.padding, str):
            raise ValueError(f"only stride-1, undilated, numerically padded convs: {conv}")
        self.conv = conv  # its weight (weight-normed or not) read at each call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, groups = self.conv, self.conv.groups
        kernel, pad = conv.kernel_size[0], int(conv.padding[0])
        batch, channels, _ = x.shape
        windows = F.pad(x, (pad, pad)).unfold(2, kernel, 1)  # [B, C, T', k]
        frames = windows.shape[2]
        per_group = channels // groups
        # [B, g, C/g, T', k] -> [B, g, T', C/g k]: each group's windows as rows
        rows = windows.reshape(batch, groups, per_group, frames, kernel).transpose(2, 3)
        rows = rows.reshape(batch, groups, frames, per_group * kernel)
        weight = conv.weight.reshape(groups, conv.out_channels // groups, per_group * kernel)
        out = rows @ weight.transpose(1, 2).to(rows.dtype)  # [B, g, T', C_out/g]
        out = out.transpose(2, 3).reshape(batch, conv.out_channels, frames)  # [B, C_out, T']
        return out if conv.bias is None else out + conv.bias.to(out.dtype)[:, None]
