"""A model family kept outside ser whose model cannot train a run: logits of another
width or rank than the run's heads split, NaN logits, no parameters, a forward that
fails. Each is one line naming the family, what its model gave and what was expected,
when the model is first built, before anything trains; `ser train` says it as one
`error:` line. Before: torch's `split_with_sizes expects ...` or `optimizer got an empty
parameter list` with a full traceback, and NaN logits called a divergence to mend with
`--precision fp32`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from ser.errors import ConfigError
from ser.models import ModelOutput, SerModel, build_model
from ser.models.batch import Batch, InputSpec
from tests.families import MeanLogits, MeanLogitsConfig
from tests.refused import one_line, ser

SPECS = [InputSpec("is13", "audio", 7, "vector")]
CONFIG = MeanLogitsConfig(fusion="mean-logits", hidden=4, dropout=0.0)
WHERE = __name__  # where the family's model classes live


class TwoLogits(MeanLogits):
    def forward(self, batch: Batch) -> ModelOutput:
        return ModelOutput(super().forward(batch).logits[:, :2])  # [B, 2] of a 4-class run


class OneLogit(MeanLogits):
    def forward(self, batch: Batch) -> ModelOutput:
        return ModelOutput(super().forward(batch).logits.sum(-1))  # [B]


class NotANumber(MeanLogits):
    def forward(self, batch: Batch) -> ModelOutput:
        return ModelOutput(super().forward(batch).logits * float("nan"))


class Empty(SerModel):
    def __init__(self, config: Any, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs)
        self.n_out = n_classes

    def forward(self, batch: Batch) -> ModelOutput:
        return ModelOutput(torch.zeros(len(batch.labels), self.n_out))


class Failing(MeanLogits):
    def forward(self, batch: Batch) -> ModelOutput:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x7 and 9x4)")


class Plain(MeanLogits):
    def forward(self, batch: Batch) -> Any:
        return super().forward(batch).logits  # a tensor, not a ModelOutput


@pytest.mark.parametrize(
    ("model", "said"),
    [
        (
            TwoLogits,
            "its forward returned logits of shape [2, 2] for a batch of is13 [2, 7]; expected "
            "[2, 4] ([B, W]: W = 4, the outputs of the run's heads, the class logits first)",
        ),
        (
            OneLogit,
            "its forward returned logits of shape [2] for a batch of is13 [2, 7]; expected "
            "[2, 4] ([B, W]: W = 4, the outputs of the run's heads, the class logits first)",
        ),
        (
            NotANumber,
            "its forward returned 8 NaN or infinite value(s) of 8 in its logits for a batch of "
            "finite inputs (is13 [2, 7]); expected finite logits",
        ),
        (Empty, "its model has no parameters to train; expected at least one nn.Parameter"),
        (
            Failing,
            "its forward failed on a batch of is13 [2, 7]: RuntimeError: mat1 and mat2 shapes "
            "cannot be multiplied (2x7 and 9x4)",
        ),
        (Plain, "its forward returned Tensor; expected a ModelOutput whose logits are a tensor"),
    ],
)
def test_a_plugin_model_that_cannot_train_is_named_when_built(
    new_family: Callable[..., Any], model: type[SerModel], said: str
) -> None:
    new_family(model=model)
    with pytest.raises(ConfigError) as refused:
        build_model(CONFIG, SPECS, 4, seed=0)
    assert str(refused.value) == f"model family 'mean_logits' ({WHERE}): {said}"


def test_a_sound_plugin_model_is_built_as_before(new_family: Callable[..., Any]) -> None:
    """The probe draws nothing from torch's generator: the weights are the seed's."""
    new_family()
    torch.manual_seed(5)
    first = build_model(CONFIG, SPECS, 4, seed=None).state_dict()
    torch.manual_seed(5)
    again = build_model(CONFIG, SPECS, 4, seed=None).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert build_model(CONFIG, SPECS, 4, seed=None).training  # its mode left as it was


def test_ser_train_says_it_in_one_line(
    new_family: Callable[..., Any], labelled_stores: Callable[..., Path], tmp_path: Path
) -> None:
    new_family(model=TwoLogits)
    store = labelled_stores({"is13": ("is13", "audio", "utterance", 7, "float32")})
    args = ("train", "--store", store, "--features", "is13", "--fusion", "mean-logits")
    args += ("--protocol", "session5", "--epochs", "1", "--classes", "4", "--device", "cpu")
    line = one_line(ser(*args, "--out", tmp_path))
    assert line.startswith(f"error: model family 'mean_logits' ({WHERE}): its forward ")
    assert "expected [2, 4]" in line
