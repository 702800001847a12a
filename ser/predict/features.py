"""Re-create a run's feature sets for new inputs, exactly as the store's were made.

`extractors_for` builds the extractor each set's provenance attrs describe and refuses
any difference in the provenance it would write (other weights, library versions, a
precision this machine cannot run): the model never saw such features. Where a model was
found is not compared (its checksums are; `--encoder`: `encoders.py`). Sets of one encoder
that differ only in their layer or pooled view (a run on `<model>.L*`, on a layer and its
`.mean`) are made by one extractor, one forward pass for all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ser.cache.fingerprint import differences, identity
from ser.errors import FingerprintMismatch
from ser.extract.base import Extractor
from ser.extract.plan import plan_shards
from ser.extract.registry import build_extractor, kind
from ser.extract.shards import forward
from ser.predict.encoders import Encoders

#: Inputs per extractor call (one padded forward pass for the pretrained encoders).
BATCH_SIZE = 16
#: Options one extractor takes several values of at once ("6,9", "mean,meanstd").
MERGED = ("layers", "pool")


@dataclass
class Recreated:
    """The extractor behind one or more feature sets of a run."""

    extractor: Extractor
    # the run's feature sets it makes -> the name it writes each under (a set renamed by
    # --name, or whose model folder is named otherwise now, keeps its name in the run)
    names: dict[str, str] = field(default_factory=dict)
    encoder: str | None = None  # the --encoder folder standing in for the recorded model


def options_from_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The extractor options that reproduce a feature set with these provenance attrs."""
    return kind(str(attrs["extractor"])).options.from_attrs(attrs)


def extractors_for(
    features: Mapping[str, Mapping[str, Any]],
    device: torch.device,
    encoders: Sequence[str] = (),
) -> list[Recreated]:
    """The loaded extractors of `features` ({name: {"fingerprint", "attrs"}}), each
    checked to reproduce the recorded provenance on `device`."""
    made: dict[tuple[str, str], Recreated] = {}
    places = Encoders(tuple(encoders), lambda name, o: _built(made, name, o).extractor)
    wanted: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
    for name, info in features.items():
        attrs = dict(info["attrs"])
        options = options_from_attrs(attrs)
        if "model" in options:
            options["model"] = places.model_for(name, attrs, options)
        kind_name = str(attrs["extractor"])
        rest = {k: v for k, v in options.items() if k not in MERGED}
        merged, names = wanted.setdefault((kind_name, repr(sorted(rest.items()))), (options, []))
        for key in MERGED:
            if options.get(key):
                merged[key] = _joined(merged.get(key) or "", options[key])
        names.append(name)
    places.check_used()
    for (kind_name, _), (options, names) in wanted.items():
        chosen = _built(made, kind_name, options)
        chosen.names.update({name: name for name in names})
        chosen.encoder = options["model"] if options.get("model") in places.used else None
    used = [r for r in made.values() if r.names]
    for r in used:
        r.extractor.load(device)
        for name in r.names:
            r.names[name] = check_reproduces(name, features[name]["attrs"], r.extractor)
    return used


def _joined(first: str, more: str) -> str:
    """Two comma lists as one, each item once: "6,9" and "9,12" give "6,9,12"."""
    items = [item for text in (first, more) for item in str(text).split(",") if item]
    return ",".join(dict.fromkeys(items))


def _built(made: dict[tuple[str, str], Recreated], name: str, options: dict[str, Any]) -> Recreated:
    """The extractor of these options, built once (unloaded): a candidate `--encoder`
    is loaded on the CPU for its checksum, and kept if it is the one."""
    key = (name, repr(sorted(options.items())))
    if key not in made:
        made[key] = Recreated(build_extractor(name, **options))
    return made[key]


def check_reproduces(name: str, attrs: Mapping[str, Any], extractor: Extractor) -> str:
    """The name `extractor` writes feature set `name` (with `attrs`) under, when one of
    its sets has the same provenance; else `FingerprintMismatch` naming the differences."""
    found = {s.name: differences(identity(attrs), identity(s.attrs)) for s in extractor.specs()}
    closest = min(found, key=lambda made: len(found[made]))
    if found[closest]:
        raise FingerprintMismatch(
            f"feature set {name} cannot be re-created as the run's model saw it: "
            f"{'; '.join(found[closest])} (recorded -> here)"
        )
    return closest


def extract_all(
    extractor: Extractor,
    inputs: Sequence[Any],
    failed: dict[int, str],
    device: torch.device,
    batch_size: int = BATCH_SIZE,
    budget: float | None = None,
    advance: Callable[[int], None] | None = None,
) -> list[dict[str, np.ndarray] | None]:
    """`extractor.extract` over `inputs` (waves or texts) in length-sorted batches
    (`budget`: padded samples or characters, None: no limit), as extraction batches them;
    positions in `failed` are skipped and new failures added there (their output is None).
    `advance`: told the inputs of each batch done (a progress bar's)."""
    out: list[dict[str, np.ndarray] | None] = [None] * len(inputs)
    todo = [i for i in range(len(inputs)) if i not in failed]
    costs = [float(len(inputs[i])) for i in todo]
    plan = plan_shards(costs, budget or math.inf, max(len(todo), 1), max_batch=batch_size)
    for batch in (batch for shard in plan.shards for batch in shard.batches):
        rows, bad = forward(extractor, [(todo[j], inputs[todo[j]]) for j in batch], device)
        failed.update({i: f"{extractor.kind}: {why}" for i, why in bad.items()})
        for i, row in rows.items():
            out[i] = row
        if advance is not None:
            advance(len(batch))
    return out
