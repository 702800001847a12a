"""Random modality masking (RMM, Wang, Ma & Ding, ICASSP 2023, section 2.3).

In training each sample loses, with probability `p(epoch)`, one modality: the text with
probability 0.6, else the audio. `p` starts at 0.8 and decays linearly to 0 at 70 % of
the epochs (epoch 70 of the paper's 100), epochs counted from 0:

    p(epoch) = p0 * max(0, 1 - epoch / (end_fraction * total_epochs))

>>> schedule = RmmSchedule()
>>> schedule.probability(0, 100), schedule.probability(35, 100), schedule.probability(70, 100)
(0.8, 0.4, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ser.errors import ConfigError


@dataclass(frozen=True)
class RmmSchedule:
    """The paper's schedule: p0 0.8, zero at 70 % of the epochs, text masked 60 % of times."""

    p0: float = 0.8
    end_fraction: float = 0.7
    text_share: float = 0.6

    def __post_init__(self) -> None:
        for name in ("p0", "text_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"RMM {name} must lie in [0, 1], got {value}")
        if not 0.0 < self.end_fraction <= 1.0:
            raise ConfigError(f"RMM end fraction must lie in (0, 1], got {self.end_fraction}")

    def probability(self, epoch: int, total_epochs: int) -> float:
        """p for `epoch` (0-based) of `total_epochs` (at least 1: the plan checks --epochs)."""
        return self.p0 * max(0.0, 1.0 - epoch / (self.end_fraction * total_epochs))

    def sample(
        self, batch_size: int, p: float | torch.Tensor, device: torch.device | None = None
    ) -> dict[str, torch.Tensor]:
        """Which samples lose which modality, at most one each: {"text": [B] bool,
        "audio": [B] bool}, from torch's generator (under `vmap`: each member its own); `p`
        a float, or a 0-d tensor on `device` (compiled steps)."""
        u = torch.rand(2, batch_size, device=device)  # [2, B]
        applied = u[0] < p
        text = applied & (u[1] < self.text_share)
        return {"text": text, "audio": applied & ~text}
