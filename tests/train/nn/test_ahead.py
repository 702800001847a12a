"""Draws made ahead of a step (ser.train.nn.ahead): the numbers and places of drawing
site by site, whatever the step does, with the placing done once a step."""

from __future__ import annotations

import torch

from ser.train.nn.noise import Noise, Streams

K = 4
CPU = torch.device("cpu")
# A step: its sizes and its sites, (members drawing, per-member shape, axes) each.
Site = tuple[tuple[bool, ...], tuple[int, ...], tuple[str | None, ...]]


def sites(t: int, b: int, rmm: bool = True, layers: int = 1) -> list[Site]:
    """An MSMSER-like step: a modality draw, then dropout sites of a few shapes."""
    every = (True,) * K
    out: list[Site] = [((True, False, True, True), (2, b), (None, "batch"))] if rmm else []
    for _ in range(layers):
        out += [
            (every, (b, t, 3), ("batch", "t", None)),
            (every, (b, 5, 3), ("batch", None, None)),
            (every, (b, t, 3), ("batch", "t", None)),
        ]
    return out


def run(steps: list[tuple[dict, list[Site]]], ahead: bool) -> tuple[list[torch.Tensor], Streams]:
    """Every site's lanes over the steps, and the streams after them."""
    streams = Streams([torch.Generator().manual_seed(50 + k) for k in range(K)])
    got = []
    for sizes, step_sites in steps:
        streams.next_step()
        noise = Noise(streams, sizes, ahead=ahead)
        got += [noise.lanes(list(m), shape, axes, CPU) for m, shape, axes in step_sites]
    streams.next_step()
    return got, streams


def sizes(t: list[int], b: list[int]) -> dict[str, list[int]]:
    return {"batch": b, "t": t}


def equal_runs(steps: list[tuple[dict, list[Site]]]) -> None:
    by_site, site_streams = run(steps, ahead=False)
    ahead, ahead_streams = run(steps, ahead=True)
    assert len(by_site) == len(ahead)
    for a, b in zip(by_site, ahead, strict=True):
        assert torch.equal(a, b)
    for k in range(K):  # and the streams go on alike
        assert torch.equal(site_streams.take(k, 10), ahead_streams.take(k, 10))


def test_steps_of_other_lengths_draw_what_site_by_site_draws() -> None:
    b = [3, 0, 2, 3]  # member 1 without a batch
    steps = [(sizes([5, 0, 7, 2], b), sites(7, 3)), (sizes([4, 0, 9, 1], b), sites(9, 3)),
             (sizes([6, 0, 3, 3], [3, 0, 1, 2]), sites(6, 3))]  # fmt: skip
    equal_runs(steps)


def test_a_site_not_planned_rewinds_and_the_step_goes_on_site_by_site() -> None:
    b = [2, 2, 2, 2]
    first = sites(4, 2)
    changed = [first[0], first[1], ((True,) * K, (2, 7), ("batch", None)), first[3]]
    steps = [(sizes([4] * K, b), first), (sizes([3] * K, b), changed),
             (sizes([5] * K, b), changed), (sizes([2] * K, b), first)]  # fmt: skip
    equal_runs(steps)


def test_a_step_that_draws_less_than_planned_settles_at_the_next_step() -> None:
    b = [2, 1, 2, 2]
    steps = [(sizes([4, 3, 4, 2], b), sites(4, 2)),
             (sizes([5, 5, 1, 2], b), sites(5, 2)[:2]),  # stops early
             (sizes([3, 3, 3, 3], b), sites(3, 2, rmm=False)),  # RMM's draw is gone
             (sizes([6, 3, 3, 3], b), sites(6, 2, rmm=False))]  # fmt: skip
    equal_runs(steps)


def test_a_plan_over_axes_this_step_does_not_size_is_not_used() -> None:
    """The sites of a step with a "t" axis plan nothing for a step without one."""
    b = [2, 2, 2, 2]
    other = [((True,) * K, (2, 3), ("batch", "u"))]
    steps = [(sizes([4] * K, b), sites(4, 2)), ({"batch": b, "u": [3] * K}, other),
             (sizes([5] * K, b), sites(5, 2))]  # fmt: skip
    equal_runs(steps)


def test_a_planned_step_places_its_draws_once_and_its_sites_cost_nothing(op_count) -> None:  # type: ignore[no-untyped-def]
    """Made ahead: all operators at the step's start, none at the sites, and fewer in all
    than site by site placed as on a GPU (one scatter a site): 19 sites of 3 shapes."""
    step_sizes = sizes([4, 3, 4, 2], [2, 1, 2, 2])
    counts = {}
    for ahead in (False, True):
        streams = Streams([torch.Generator().manual_seed(k) for k in range(K)])
        for _ in range(2):  # the first step plans the second
            streams.next_step()
            with op_count() as making:
                noise = Noise(streams, step_sizes, one_launch=True, ahead=ahead)
            serve = [(list(m), s, a) for m, s, a in sites(4, 2, layers=6)]
            with op_count() as serving:
                for m, s, a in serve:
                    noise.lanes(m, s, a, CPU)
        counts[ahead] = (making.count, serving.count)
    assert counts[True][1] == 0
    assert sum(counts[True]) < sum(counts[False]), counts


def test_with_draws_made_ahead_the_msmser_forward_traces_into_one_graph() -> None:
    """What `torch.compile` (and a CUDA graph) needs of a training step: no stream in it.
    Site by site, every draw site that refills a pool breaks the graph."""
    import torch._dynamo

    from ser.train.batch import Batch, InputSpec
    from ser.train.models import ModelConfig, build_model

    config = ModelConfig(fusion="mit", d_model=8, heads=2, queries=3, layers=1, decoder_layers=1)
    specs = [InputSpec("a", "audio", 4, "sequence"), InputSpec("t", "text", 4, "sequence")]
    model = build_model([config] * 2, specs, 4, seeds=[0, 1])
    model.train()
    model.set_epoch(0, 10)  # RMM draws
    batch = Batch(
        x={"a": torch.randn(2, 3, 7, 4), "t": torch.randn(2, 3, 5, 4)},
        mask={"a": torch.ones(2, 3, 7, dtype=torch.bool),
              "t": torch.ones(2, 3, 5, dtype=torch.bool)},
        labels=torch.randint(0, 4, (2, 3)), index=torch.zeros(2, 3, dtype=torch.long),
        sizes={"batch": [3, 2], "a": [7, 6], "t": [5, 5]},
    )  # fmt: skip
    streams = Streams([torch.Generator().manual_seed(k) for k in range(2)])
    graphs = []
    for _ in range(2):  # the first step has no plan yet
        streams.next_step()
        batch.noise = Noise(streams, batch.sizes or {}, ahead=True)
        torch._dynamo.reset()
        explained = torch._dynamo.explain(lambda b: model.loss(model(b), b).sum())(batch)
        graphs.append(explained.graph_count)
    torch._dynamo.reset()
    assert graphs[0] > 1 and graphs[1] == 1, graphs
