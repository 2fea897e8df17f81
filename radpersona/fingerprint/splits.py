"""Seeded splits of a training fold: the inner validation split, stratified folds and mini-batches.

The cohort's patient-level cross-validation folds (column ``fold`` of ``cohort.parquet``) are selected
by :func:`radpersona.folds.fold_cases`; the splits here divide one training fold further.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold

from radpersona.errors import InputDataError


def inner_validation_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split of a training fold into inner-training and inner-validation indices.

    Each class contributes ``max(1, round(fraction * n_class))`` cases to the validation part and
    keeps at least one for training.

    Raises:
        InputDataError: a class has fewer than 2 cases.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    val_parts = []
    for label in (0, 1):
        members = np.flatnonzero(y == label)
        if members.size < 2:
            raise InputDataError(
                f"inner validation split needs >= 2 cases of class {label}, the training fold has {members.size}"
            )
        n_val = min(max(1, int(round(fraction * members.size))), members.size - 1)
        val_parts.append(rng.permutation(members)[:n_val])
    val = np.sort(np.concatenate(val_parts))
    train = np.setdiff1d(np.arange(y.size), val)
    return train, val


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out indices of ``folds`` stratified, shuffled, seeded cross-validation folds."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    y = np.asarray(y)
    return [np.sort(test) for _, test in splitter.split(np.zeros(y.size), y)]


def batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive batches; a trailing batch of one case is merged into the previous one (BatchNorm)."""
    parts = [order[i : i + batch_size] for i in range(0, order.size, batch_size)]
    if len(parts) > 1 and parts[-1].size == 1:
        parts[-2] = np.concatenate([parts[-2], parts[-1]])
        parts.pop()
    return parts
