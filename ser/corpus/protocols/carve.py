"""Random, stratified parts of a set of rows: the `random` protocol's sides and the
`random10` validation slice carved from a training side.

A part takes round(share x n_c) rows of each class c, drawn with
`numpy.random.default_rng(seed)`; given dialogs it moves whole dialogs instead
(sklearn's ``StratifiedGroupKFold``, parts of 10 %; sizes approximate), so a
dialog-context model never sees a test utterance's dialog in training.

>>> rows, labels = np.arange(20), np.repeat([0, 1], 10)
>>> kept, held = stratified_slice(rows, labels, None, 0.1, seed=0)
>>> len(kept), len(held), sorted(labels[held].tolist())
(18, 2, [0, 1])
"""

from __future__ import annotations

import numpy as np

from ser.errors import ConfigError


def stratified_slice(
    rows: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, slice), each sorted: a stratified `fraction` of `rows` (whole groups when
    given)."""
    if groups is not None:
        parts = group_parts(rows, labels, groups, seed, n_splits=round(1 / fraction))
        kept, out = np.concatenate(parts[1:]), parts[0]
    else:
        kept, out = stratified_parts(rows, labels, (fraction,), seed)
    return np.sort(kept), np.sort(out)


def stratified_parts(
    rows: np.ndarray, labels: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """[rest, part_1, ...]: part_i takes round(fraction_i * n_c) rows of each class c.

    Rounding per class keeps every part, the rest included, within one utterance per
    class of its share; sklearn's two chained train_test_split calls can miss the rest by
    more, because the rest inherits both roundings.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels[rows]):
        members = rng.permutation(rows[labels[rows] == c])
        cuts = np.cumsum([round(f * len(members)) for f in fractions])
        pieces = np.split(members, cuts)
        for part, piece in zip(parts, [pieces[-1], *pieces[:-1]], strict=True):
            part.append(piece)
    out = [np.concatenate(p) for p in parts]
    if any(len(p) == 0 for p in out):
        raise ConfigError(
            f"cannot carve a {' / '.join(f'{f:.0%}' for f in fractions)} stratified split "
            f"from {len(rows)} utterances: a part would be empty"
        )
    return out


def group_parts(
    rows: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int, n_splits: int = 10
) -> list[np.ndarray]:
    """`rows` cut into `n_splits` dialog-disjoint, roughly stratified parts."""
    n_groups = len(np.unique(groups[rows]))
    problem = (
        f"a random split for a dialog-context model moves whole dialogs, in {n_splits} parts "
        f"of 1/{n_splits}"
    )
    if n_groups < n_splits:
        raise ConfigError(f"{problem}: needs {n_splits} dialogs, the data has {n_groups}")
    from sklearn.model_selection import StratifiedGroupKFold  # ~1 s to import: only here

    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    parts = [rows[part] for _, part in splitter.split(rows, labels[rows], groups[rows])]
    if any(len(part) == 0 for part in parts):
        raise ConfigError(f"{problem}: the {n_groups} dialogs left a part empty")
    return parts
