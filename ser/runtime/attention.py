"""Which fused attention kernels scaled_dot_product_attention may use, decided in one
place for training and extraction: those the caller left on, never cuDNN's.

On an H100 cuDNN's fused attention builds an execution plan for each new sequence
length: with IEMOCAP's lengths a first training epoch took 19-21 s instead of 3-3.5 s,
and extracting an hour of HuBERT-base frames spent half its host time in
`_cudnn_attention_forward` (5.8 ms a call) while the GPU idled 79 % of the time. Flash
attention (no mask) and the memory-efficient kernel (masks, variable lengths) need no
plan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it computes: `ser extract`'s no-op stays torch-free
    from torch.nn.attention import SDPBackend


def attention_backends() -> list[SDPBackend]:
    """The SDPA backends a model's attention runs on, for `sdpa_kernel` around its
    forward: those its caller left on (`STACKED_BACKENDS`, say), never cuDNN's. On an
    H100 cuDNN's fused attention builds an execution plan for each new sequence length:
    with IEMOCAP's lengths a first epoch took 19-21 s instead of 3-3.5 s."""
    import torch
    from torch.nn.attention import SDPBackend

    cuda = torch.backends.cuda
    on = [
        (SDPBackend.FLASH_ATTENTION, cuda.flash_sdp_enabled()),
        (SDPBackend.EFFICIENT_ATTENTION, cuda.mem_efficient_sdp_enabled()),
        (SDPBackend.MATH, cuda.math_sdp_enabled()),
    ]
    return [backend for backend, enabled in on if enabled] + [SDPBackend.OVERRIDEABLE]
