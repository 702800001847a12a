"""Many members of one architecture trained as one: torch.func's model ensembling.

With the losses summed and an element-wise optimizer, a stacked member equals the member
trained alone when nothing is random (tests/train/test_ensemble.py); under `vmap`
(`randomness="different"`) each member draws its own dropout and masks. A member alone
trains in place, in its module's own parameters, through the same interface.

>>> import torch
>>> from torch import nn
>>> members = [nn.Linear(3, 2), nn.Linear(3, 2)]
>>> ensemble = Ensemble(members)
>>> ensemble.params["weight"].shape  # [K, 2, 3]
torch.Size([2, 2, 3])
>>> x = torch.randn(2, 5, 3)  # [K, B, 3]: member k's batch in slot k
>>> out = ensemble.call(lambda module, x: module(x), x)  # [K, B, 2]
>>> torch.allclose(out[1], members[1](x[1]))
True
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.attention import sdpa_kernel

from ser.models.nn.attention import STACKED_BACKENDS

R = TypeVar("R")  # what a step function returns: tensors, or tuples of them
T = TypeVar("T")


class Ensemble:
    """K modules of one architecture with stacked state (module docstring). One module
    alone (`module`) trains in place: its own parameters are the optimiser's leaves, no
    stacked copy to cut a slot of in every step. A compiled step then sees them as the
    module's, so CUDA graphs hold them where they are: no weight copied in, no gradient
    added back, at every step (`ser.train.engine.steps`). `state()` gives its tensors with
    the leading member axis the loop reads, as views."""

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        if not modules:
            raise ValueError("an ensemble needs at least one module")
        self.members = len(modules)
        self.module = modules[0] if self.members == 1 else None  # None: stacked
        self.params: dict[str, torch.Tensor] = {}  # {name: [K, ...]}, stacked
        self.buffers: dict[str, torch.Tensor] = {}
        if self.module is not None:
            self.base = self.module
            return
        # The structure and plain attributes (schedules, eval masks) every member shares;
        # its own tensors are never read.
        self.base = copy.deepcopy(modules[0]).to("meta")
        self.params, self.buffers = stack_module_state(list(modules))

    def parameters(self) -> list[torch.Tensor]:
        if self.module is not None:
            return list(self.module.parameters())
        return list(self.params.values())

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def eval(self) -> None:
        self.base.train(False)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """The module's schedules (RMM's p) for this epoch: one for all (a shared config)."""
        hook = getattr(self.base, "set_epoch", None)
        if callable(hook):
            hook(epoch, total_epochs)

    def call(self, fn: Callable[..., R], *args: object) -> R:
        """`fn(module, *member_args)` for every member: each module with its own state,
        each argument (tensors, or dicts / tuples of tensors, all leading with K) cut to
        the member's slot; the results stacked again ([K, ...])."""

        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], *a: object) -> R:
            return fn(_Bound(self.base, params, buffers), *a)

        if self.module is not None:  # no vmap: the module alone, as a user runs it
            out = fn(self.module, *tree_map(lambda t: t[0], args))
            return tree_map(lambda t: t.unsqueeze(0), out)
        dims = (0, 0, *(None if a is None else 0 for a in args))  # None: an absent input
        with warnings.catch_warnings(), sdpa_kernel(STACKED_BACKENDS):
            # On the CPU vmap runs SDPA member by member (its fused CPU kernel has no
            # batching rule): correct, measured in benchmarks/README.md, not news each run.
            warnings.filterwarnings("ignore", message=".*we have not yet implemented the batching")
            return vmap(one, in_dims=dims, randomness="different")(self.params, self.buffers, *args)

    def state(self) -> dict[str, torch.Tensor]:
        """Every stacked tensor by its module's name (parameters and buffers)."""
        if self.module is not None:
            held = self.module.state_dict(keep_vars=True)
            return {n: t.unsqueeze(0) for n, t in held.items()}
        return {**self.params, **self.buffers}

    @torch.no_grad()
    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's state, as its module's `state_dict()` holds it."""
        return {name: t[k].detach().clone() for name, t in self.state().items()}

    def write_back(self, modules: Sequence[nn.Module]) -> None:
        """Each member's current state into its module."""
        for k, module in enumerate(modules):
            module.load_state_dict(self.member_state(k))


class _Bound:
    """A module called with one member's tensors (`functional_call`); other attributes
    (`loss`, `unit`, ...) read from the module itself."""

    def __init__(
        self, module: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]
    ) -> None:
        self._module, self._state = module, (params, buffers)

    def __call__(self, *args: object) -> object:
        return functional_call(self._module, self._state, args)

    # A proxy: every other attribute is the module's, of whatever type it has there.
    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def tree_map(fn: Callable[[torch.Tensor], torch.Tensor], tree: T) -> T:
    """`fn` on every tensor of nested tuples, lists and dicts (None and other leaves kept):
    the same structure back."""
    if isinstance(tree, torch.Tensor):
        return cast(T, fn(tree))
    if isinstance(tree, dict):
        return cast(T, {k: tree_map(fn, v) for k, v in tree.items()})
    if isinstance(tree, (tuple, list)):
        return cast(T, type(tree)(tree_map(fn, v) for v in tree))
    return tree
