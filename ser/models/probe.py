"""A plugin family's model tried when it is built for a run's inputs and
heads, on a small batch of the shapes its inputs come in (`check_plugin_model`): that it
has parameters to train, and that its forward gives a `ModelOutput` of finite logits
shaped as the heads split them. A mistake of a family kept outside ser is then one line
naming the family, what it gave and what was expected, before anything trains, not
torch's error from deep in a step (`split_with_sizes expects ...`, an empty parameter
list) or a divergence blamed on the precision. ser's own families are tested by the
suite and not tried here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ser.errors import ConfigError
from ser.models.base import ModelOutput, SerModel
from ser.models.batch import Batch, InputSpec, Unit

#: The probe batch: utterances (or dialogs), frames each, and utterances a dialog.
ITEMS, FRAMES, TURNS = 2, 3, 2


def is_plugin(model: object) -> bool:
    """Whether a family's model class lives outside the `ser` package."""
    return not str(getattr(model, "__module__", "")).startswith("ser.")


def check_plugin_model(
    name: str, model: SerModel, inputs: Sequence[InputSpec], unit: Unit, width: int
) -> None:
    """`ConfigError` naming the family `name` when `model`, built for `inputs` and a last
    layer of `width` outputs, has nothing to train, fails on the probe batch, or gives
    logits of another shape or not finite (a forward of two items: cheap beside the
    training it guards, so it keeps no memory of the models it tried)."""
    problem = _problem(model, inputs, unit, width)
    if problem is not None:
        raise ConfigError(f"model family {name!r} ({type(model).__module__}): {problem}")


def _problem(model: SerModel, inputs: Sequence[InputSpec], unit: Unit, width: int) -> str | None:
    if not any(p.requires_grad for p in model.parameters()):
        return "its model has no parameters to train; expected at least one nn.Parameter"
    batch = probe_batch(inputs, unit)
    lead = [ITEMS, TURNS] if unit == "dialog" else [ITEMS]
    expected = [*lead, width]
    shape = "[B, U, W]" if unit == "dialog" else "[B, W]"
    try:
        out = _forward(model, batch)
    except Exception as e:  # the plugin's own code, whatever it raises
        what = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        return f"its forward failed on a batch of {_shapes(batch)}: {what.rstrip(': ')}"
    if not isinstance(out, ModelOutput) or not isinstance(out.logits, torch.Tensor):
        got = type(out.logits if isinstance(out, ModelOutput) else out).__name__
        return f"its forward returned {got}; expected a ModelOutput whose logits are a tensor"
    logits = out.logits
    if list(logits.shape) != expected:
        return (
            f"its forward returned logits of shape {list(logits.shape)} for a batch of "
            f"{_shapes(batch)}; expected {expected} ({shape}: W = {width}, the outputs of "
            "the run's heads, the class logits first)"
        )
    bad = int((~torch.isfinite(logits.float())).sum())
    if bad:
        return (
            f"its forward returned {bad} NaN or infinite value(s) of {logits.numel()} in its "
            f"logits for a batch of finite inputs ({_shapes(batch)}); expected finite logits"
        )
    return None


def _forward(model: SerModel, batch: Batch) -> object:
    """The model's output on `batch` in eval mode, drawing nothing from torch's global
    generator and changing no parameter; its mode restored."""
    training = model.training
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            return model.eval()(batch)
    finally:
        model.train(training)


def probe_batch(inputs: Sequence[InputSpec], unit: Unit) -> Batch:
    """A batch of `ITEMS` utterances (or dialogs of `TURNS`) with each input in the view
    the data side gives it, random values from a generator of its own: sequences
    [B, T(, L), D] of `FRAMES` with their mask (the second one frame shorter), vectors
    [B(, U)(, L), D]."""
    draw = torch.Generator().manual_seed(0)
    lead = [ITEMS, TURNS] if unit == "dialog" else [ITEMS]
    x, mask = {}, {}
    for spec in inputs:
        layers = [spec.layers] if spec.layers > 1 else []
        if spec.view == "sequence" and unit != "dialog":
            x[spec.name] = torch.randn(ITEMS, FRAMES, *layers, spec.dim, generator=draw)
            held = torch.ones(ITEMS, FRAMES, dtype=torch.bool)
            held[1:, -1] = False
            mask[spec.name] = held
        else:
            x[spec.name] = torch.randn(*lead, *layers, spec.dim, generator=draw)
    index = torch.arange(ITEMS * (TURNS if unit == "dialog" else 1)).reshape(lead)
    utt_mask = torch.ones(*lead, dtype=torch.bool) if unit == "dialog" else None
    return Batch(x, mask, torch.zeros(lead, dtype=torch.long), index, utt_mask=utt_mask)


def _shapes(batch: Batch) -> str:
    return ", ".join(f"{name} {list(t.shape)}" for name, t in batch.x.items())
