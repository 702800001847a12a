import pytest
import torch
from torch.nn import functional as F

from ser.train.models.linear import each, linear, onednn_available

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="PyTorch built without oneDNN")


def grads(fn, x, w, b):
    for t in (x, w, b):
        if t is not None:
            t.grad = None
    y = fn(x, w, b)
    y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
    return y, [None if t is None else t.grad for t in (x, w, b)]


@pytest.mark.parametrize(("d_in", "d_out"), [(7, 5), (5, 13)])  # both weight-gradient orders
@pytest.mark.parametrize("bias", [True, False])
def test_equals_f_linear_forward_and_gradients(d_in: int, d_out: int, bias: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 4, d_in, requires_grad=True)
    w = torch.randn(d_out, d_in, requires_grad=True)
    b = torch.randn(d_out, requires_grad=True) if bias else None
    want, want_grads = grads(F.linear, x, w, b)
    got, got_grads = grads(linear, x, w, b)
    assert got.shape == (3, 4, d_out)
    assert torch.allclose(got, want, atol=1e-5)
    for g, e in zip(got_grads, want_grads, strict=True):
        assert (g is None) == (e is None)
        if g is not None:
            assert torch.allclose(g, e, atol=1e-5)


def test_strided_input_and_frozen_input() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 9).t()  # [9, 6], not contiguous; data needs no gradient
    w = torch.randn(4, 6, requires_grad=True)
    want, (_, w_want, _) = grads(F.linear, x, w, None)
    got, (_, w_got, _) = grads(linear, x, w, None)
    assert torch.allclose(got, want, atol=1e-5) and torch.allclose(w_got, w_want, atol=1e-5)


@needs_onednn
def test_runs_on_onednn_for_float32_on_the_cpu() -> None:
    x, w = torch.randn(5, 3), torch.randn(2, 3, requires_grad=True)
    assert type(linear(x, w).grad_fn).__name__ == "_OneDnnLinearBackward"


@pytest.mark.filterwarnings("ignore:TF32 acceleration")  # from torch.backends.mkldnn.flags
def test_falls_back_to_f_linear() -> None:
    w = torch.randn(2, 3, requires_grad=True)
    with torch.backends.mkldnn.flags(enabled=False):  # PyTorch's own switch
        assert "OneDnn" not in type(linear(torch.randn(5, 3), w).grad_fn).__name__
    x64 = torch.randn(5, 3, dtype=torch.float64)
    assert linear(x64, w.double()).dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast rules stay F.linear's
        assert linear(torch.randn(5, 3), w).dtype == torch.bfloat16
    assert linear(torch.randn(0, 3), w).shape == (0, 2)
    assert linear(torch.randn(5, 3), torch.randn(0, 3)).shape == (5, 0)


def test_each_applies_layer_m_to_input_m() -> None:
    x = torch.randn(2, 3, 4, 5)
    layers = [(torch.randn(6, 5), torch.randn(6)), (torch.randn(6, 5), None)]
    y = each(x, layers)
    assert y.shape == (2, 3, 4, 6)
    for m, (w, b) in enumerate(layers):
        assert torch.allclose(y[m], F.linear(x[m], w, b), atol=1e-5)
    with pytest.raises(ValueError, match="1 layers for 2 inputs"):
        each(x, layers[:1])
