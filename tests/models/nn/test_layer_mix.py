"""s3prl's weighted sum of layers (`LayerMix`): its maths, padding, and members under vmap
each with their own weights."""

from __future__ import annotations

import doctest

import torch
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from ser.models.batch import InputSpec
from ser.models.nn import layer_mix
from ser.models.nn.layer_mix import LayerMix, LayerMixes, learnt_weights


def test_the_sum_is_softmax_weights_over_layer_normed_layers() -> None:
    mix = LayerMix(3)
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(2, 4, 3, 8) * torch.tensor([1.0, 10.0, 100.0])[:, None]  # [B, T, L, D]
    w = torch.softmax(torch.tensor([0.5, -1.0, 2.0]), -1)
    layers = [F.layer_norm(x[:, :, i], (8,)) for i in range(3)]  # no scale, no shift
    expected = sum(w[i] * layers[i] for i in range(3))
    torch.testing.assert_close(mix(x), expected)
    # a layer 100x louder counts no more for it: each is normed before the sum
    torch.testing.assert_close(mix(x * torch.tensor([1.0, 1.0, 100.0])[:, None]), expected)


def test_weights_start_equal_and_padding_stays_zero_and_finite() -> None:
    mix = LayerMix(4)
    assert mix.softmax().tolist() == [0.25] * 4 and not list(mix.buffers())
    x = torch.zeros(3, 5, 4, 6)  # [B, T, L, D] of padding
    out = mix(x)
    out.sum().backward()
    assert out.abs().max() == 0 and torch.isfinite(mix.weights.grad).all()


def test_each_member_under_vmap_sums_with_its_own_weights() -> None:
    members = [LayerMix(3), LayerMix(3)]
    with torch.no_grad():
        members[1].weights.copy_(torch.tensor([3.0, 0.0, -3.0]))
    params, _ = stack_module_state(members)  # type: ignore[arg-type]
    x = torch.randn(2, 5, 3, 4)  # [K, B, L, D]

    def one(p: dict[str, torch.Tensor], xk: torch.Tensor) -> torch.Tensor:
        return functional_call(members[0], p, (xk,))

    out = vmap(one, randomness="different")(params, x)  # [K, B, D]
    for k in range(2):
        torch.testing.assert_close(out[k], members[k](x[k]))


def test_mixes_by_input_name_share_with_a_stage_and_report_weights() -> None:
    specs = [
        InputSpec("wavlm.L0-2", "audio", 4, "sequence", layers=3),
        InputSpec("roberta", "text", 5, "vector"),
    ]
    mixes = LayerMixes(specs)
    assert list(mixes.mixes) == ["wavlm_L0-2"]  # plain inputs have none
    stage = LayerMixes(specs[:1], of=mixes)
    assert stage.mixes["wavlm_L0-2"] is mixes.mixes["wavlm_L0-2"]
    x = {"wavlm.L0-2": torch.randn(2, 7, 3, 4), "roberta": torch.randn(2, 5)}
    out = mixes(x)
    assert out["wavlm.L0-2"].shape == (2, 7, 4) and out["roberta"] is x["roberta"]
    state = {"m.mixes.wavlm_L0-2.weights": torch.tensor([0.0, 0.0, 1.0])}
    weights = learnt_weights(state, specs, "m")
    assert list(weights) == ["wavlm.L0-2"]
    torch.testing.assert_close(
        torch.tensor(weights["wavlm.L0-2"]), torch.tensor([0.0, 0.0, 1.0]).softmax(-1)
    )


def test_docstring_examples_run() -> None:
    result = doctest.testmod(layer_mix)
    assert result.attempted > 0 and result.failed == 0
