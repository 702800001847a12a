"""`ser train --calibrate temperature`: each member's temperature, fitted on its own
validation side once it is selected, applied to its test probabilities; and, where the
store's corpus has annotators' votes, how far the test probabilities are from them.

The category's outputs are a softmax; its log is the logits less a per-row constant, so
softmax(log p / T) is softmax(logits / T) exactly (a probability the float32 softmax
rounded to 0 is read as the smallest float32, ~1e-38: its logit was ~87 below the top).
The test side is never looked at before T is fixed: T comes from the validation side's
logits and consensus labels alone (least NLL, `ser.heads.calibration.fit_temperature`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ser.corpus.labels import LabelSet
from ser.corpus.votes import Store, voted_distributions
from ser.errors import SerError
from ser.heads.calibration import T_RANGE, fit_temperature, js_divergence, scaled_softmax
from ser.heads.targets import Targets
from ser.track.progress import Progress
from ser.train.data import TrainData
from ser.train.engine import Evaluation
from ser.train.plan import Job, run_targets

#: The smallest positive float32: a probability's floor before its log is taken.
TINY = float(np.finfo(np.float32).tiny)


def category_at(targets: Targets) -> int | None:
    """The category head's place among the run's heads (None: the run has none)."""
    return next((i for i, head in enumerate(targets.heads) if head.category), None)


def logits_of(probs: np.ndarray) -> np.ndarray:
    """Logits up to a per-row constant, [N, C], from softmax probabilities."""
    return np.log(np.maximum(np.asarray(probs, dtype=np.float64), TINY))


def category_probabilities(evaluation: Evaluation, targets: Targets) -> np.ndarray:
    """The category's softmax probabilities [N, C] of a side's predictions ([0, 0]: none)."""
    category = targets.category
    found = None if category is None else targets.output_of(category.name, evaluation.outputs)
    return np.zeros((0, 0)) if found is None else found


def member_temperature(validated: Evaluation, targets: Targets) -> float:
    """The temperature of a member's validation predictions: fitted on the utterances
    with a class (a multi-head run's others have none)."""
    probs = category_probabilities(validated, targets)
    gold = validated.y_true
    labelled = (gold >= 0) & (gold < probs.shape[1]) if len(probs) else gold[:0] >= 0
    return fit_temperature(logits_of(probs[labelled]), gold[labelled])


def at_bound(temperature: float) -> str:
    """What a temperature at an end of the range searched says of the validation side;
    "" inside it."""
    if T_RANGE[0] * 1.01 < temperature < T_RANGE[1] / 1.01:
        return ""
    why = (  # sharper keeps helping where every class is right; flatter where none is
        "the model separates it fully"
        if temperature < 1
        else "the model does no better than chance on it"
    )
    return (
        f"temperature {temperature:.3g} is at the end of the range searched ({T_RANGE[0]:g} "
        f"to {T_RANGE[1]:g}): the validation side's likelihood keeps rising past it ({why})"
    )


def calibrated(tested: Evaluation, at: int, temperature: float) -> Evaluation:
    """`tested` with the category's probabilities softmax(logits / T) (its predicted
    classes and scores unchanged: T > 0 keeps every row's order)."""
    if not tested.outputs:
        return tested
    outputs = list(tested.outputs)
    outputs[at] = scaled_softmax(logits_of(outputs[at]), temperature).astype(np.float32)
    return replace(tested, outputs=tuple(outputs))


def calibrate(
    group: Sequence[Job],
    tested: Sequence[Evaluation],
    validated: Callable[[], list[Evaluation]],
    progress: Progress,
) -> tuple[list[Evaluation], list[float | None]]:
    """Each job's test predictions, `tested`, scaled by its temperature (`calibrated`; a
    job without one keeps its predictions as tested), and its temperature
    (`fitted_temperatures`; None: not calibrated)."""
    temperatures = fitted_temperatures(group, validated, progress)
    at = category_at(run_targets(group[0].run.config))
    scaled = [
        t if temperature is None or at is None else calibrated(t, at, temperature)
        for t, temperature in zip(tested, temperatures, strict=True)
    ]
    return scaled, temperatures


def fitted_temperatures(
    group: Sequence[Job], validated: Callable[[], list[Evaluation]], progress: Progress
) -> list[float | None]:
    """Each job's temperature (`--calibrate temperature`), fitted on its selected state's
    predictions of its own validation side (`validated()`: as its run tests); None for a
    job of a run without the option (members of several runs may share a group)."""
    targets = run_targets(group[0].run.config)
    wanted = [job.run.config.calibrate == "temperature" for job in group]
    if targets.category is None or not any(wanted):
        return [None] * len(group)
    found = [
        member_temperature(v, targets) if want else None
        for v, want in zip(validated(), wanted, strict=True)
    ]
    for job, temperature in zip(group, found, strict=True):
        if temperature is not None and (note := at_bound(temperature)):
            progress.message(f"seed {job.seed} {job.fold.name}: {note}")
    return found


def read_votes(
    store: Store, utt_ids: Sequence[str], label_set: LabelSet, root: str | None
) -> tuple[dict[str, np.ndarray], str]:
    """The voted utterances' distributions (`voted_distributions`) and a line saying what
    was read; a corpus that cannot be read gives none and says why, as training goes on."""
    try:
        votes = voted_distributions(store, utt_ids, label_set, None if root is None else Path(root))
    except SerError as error:
        return {}, f"--calibrate: no annotators' votes compared ({error})"
    if not votes:
        return {}, ""
    return votes, (
        f"--calibrate: {len(votes)} of {len(utt_ids)} utterance(s) have annotators' votes in "
        "the class set: each fold's test side is compared with them (JSD)"
    )


def votes_jsd(
    tested: Evaluation,
    targets: Targets,
    data: TrainData,
    positions: np.ndarray,
    votes: Mapping[str, np.ndarray],
) -> dict[str, float]:
    """The mean JSD (base 2) of the voted utterances of a test side (its `positions` in
    `data`) to their votes: of the model's probabilities (`model`) and of the one-hot
    consensus label (`majority`), and how many were voted (`n`); {} where none was."""
    if not votes:
        return {}
    rows, utt_ids = data.manifest_rows[positions].tolist(), data.utt_ids[positions].tolist()
    names = dict(zip(rows, utt_ids, strict=True))
    ids = [str(names[int(row)]) for row in tested.index]
    keep = np.array([i for i, u in enumerate(ids) if u in votes], dtype=np.int64)
    probs = category_probabilities(tested, targets)
    if not len(keep) or not len(probs):
        return {}
    voted = np.stack([votes[ids[i]] for i in keep])
    onehot = np.eye(probs.shape[1])[tested.y_true[keep]]
    return {
        "model": float(js_divergence(probs[keep], voted).mean()),
        "majority": float(js_divergence(onehot, voted).mean()),
        "n": float(len(keep)),
    }
