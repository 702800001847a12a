"""The device a run computes on: the one place train, extract, predict and sweep pick it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ser.errors import ConfigError

if TYPE_CHECKING:
    import torch

NAMES = "auto, cpu, cuda or cuda:N"
DEVICE_HELP = "auto: the GPU when there is one, else the CPU; or cpu, cuda, cuda:N."


def pick_device(name: str = "auto") -> torch.device:
    """The device `name` means: "auto" (CUDA when available, else the CPU), "cpu", "cuda"
    or "cuda:N"; other names, and CUDA without a GPU, are a `ConfigError`.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    import torch  # here: `ser extract --help` and its no-op answer stay torch-free

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"unknown device {name!r}: use {NAMES}") from error
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {name!r}: use {NAMES}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU here (use cpu)")
    return device


def capturing() -> bool:
    """Whether this thread's CUDA stream is capturing a graph (`ser.train.engine.graphs`): a
    step then reads what changes between replays from tensors on the device, never from
    Python numbers, which the graph would keep as they were at capture."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()
