import subprocess
import sys

import pytest
import torch
from torch import nn

from ser.train.optim import Adam


def _models() -> tuple[nn.Sequential, nn.Sequential]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3), nn.Linear(3, 2))
    reference = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3), nn.Linear(3, 2))
    reference.load_state_dict(model.state_dict())
    return model, reference


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_adam_equals_torch_fused_adam_bit_for_bit(weight_decay: float) -> None:
    model, reference = _models()
    ours = Adam(model.parameters(), lr=3e-3, weight_decay=weight_decay)
    theirs = torch.optim.Adam(
        reference.parameters(), lr=3e-3, weight_decay=weight_decay, fused=True
    )
    x = torch.randn(16, 5)
    for step in range(7):
        for net, opt in ((model, ours), (reference, theirs)):
            opt.zero_grad()
            # The last layer is left out on odd steps: parameters without a gradient
            # keep their moments and step count, as in torch.optim.
            head = net[:3] if step % 2 else net
            head(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q)


def test_adam_rejects_bad_settings_and_integer_parameters() -> None:
    w = nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="invalid Adam settings"):
        Adam([w], lr=-1.0)
    with pytest.raises(ValueError, match="floating point"):
        Adam([torch.zeros(2, dtype=torch.long)], lr=0.1)  # type: ignore[list-item]


def test_zero_grad_keeps_or_drops_gradients() -> None:
    w = nn.Parameter(torch.ones(2))
    opt = Adam([w], lr=0.1)
    w.sum().backward()
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and torch.equal(w.grad, torch.zeros(2))
    opt.zero_grad()
    assert w.grad is None


def test_grad_scaler_drives_adam_like_a_torch_optimizer() -> None:
    model, reference = _models()
    ours = Adam(model.parameters(), lr=1e-2)
    theirs = torch.optim.Adam(reference.parameters(), lr=1e-2)
    x = torch.randn(8, 5)
    for net, opt in ((model, ours), (reference, theirs)):
        # A scaler on CPU with scaling on: unscale_ reads param_groups, then step runs.
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        scaler.scale(net(x).pow(2).mean()).backward()
        scaler.step(opt)  # type: ignore[arg-type]
        scaler.update()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_adam_does_not_import_torch_dynamo() -> None:
    # torch.optim imports torch._dynamo (seconds) on first use; this optimizer must not.
    code = (
        "import sys, torch\n"
        "from ser.train.optim import Adam\n"
        "w = torch.nn.Parameter(torch.ones(3)); opt = Adam([w], lr=0.1)\n"
        "w.sum().backward(); opt.step(); opt.zero_grad()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
