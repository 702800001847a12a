"""A sweep's `--dry-run` estimate: parameters, memory and time of each cell.

Rough by design: training costs about 6 FLOPs per parameter per input row (forward and
backward), each weight applied to every frame / token row of a sequence model and once
per utterance of a vector model; time divides that by an effective throughput for the
device (small models on a CPU are dispatch-bound, so the CPU figure is low). Memory is
weights, gradients and Adam's two moments per member, plus the features on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Effective training throughput, FLOP/s: the CPU's from the demo's MSMSER on 2 cores,
# the GPU's from paper-size MSMSER on an H100 (benchmarks/README.md).
EFFECTIVE_FLOPS = {"cpu": 5e9, "cuda": 2e13}


@dataclass(frozen=True)
class Estimate:
    parameters: int  # per member
    memory: int  # bytes
    seconds: float
    device: str  # where it would train


def estimate(cell: Any, store: Any, cache: dict[Any, int] | None = None) -> Estimate:
    """The estimate of a `ResolvedCell` on the opened `store`."""
    from ser.labels import get_label_set
    from ser.train.features import resolve_features
    from ser.train.models import build_model
    from ser.train.models.config import FeatureInfo, plan_inputs
    from ser.train.run import make_plan

    config = cell.config
    plan = make_plan(config)
    features = resolve_features(store, config.features)
    infos = [FeatureInfo(f.name, f.modality, f.level, f.dim) for f in features]
    _, specs = plan_inputs(config.model, infos)
    key = (cell.task_key, tuple(specs))
    cache = {} if cache is None else cache
    if key not in cache:
        n_classes = len(get_label_set(plan.classes).classes)
        model = build_model(config.model, list(specs), n_classes=n_classes, seeds=[0])
        cache[key] = sum(p.numel() for p in model.parameters())
    params = cache[key]
    utterances = max(len(store.manifest), 1)
    sequence = any(s.view == "sequence" for s in specs)
    rows = sum(store.info(f.name).rows for f in features) / utterances if sequence else 1.0
    flops = 6.0 * params * rows * utterances * plan.epochs * cell.members
    data = sum(store.info(f.name).bytes for f in features)
    memory = 16 * params * cell.members + data
    seconds = flops / EFFECTIVE_FLOPS[plan.device.type]
    return Estimate(params, memory, seconds, plan.device.type)
