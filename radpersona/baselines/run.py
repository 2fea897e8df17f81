"""One baseline and task over every cross-validation fold and valid (rule ``train_baseline``).

The folds are the cohort's (``cohort.parquet`` column ``fold``, patient-level): fold ``k`` trains on
the other training folds and reports fold ``k``; ``all`` trains on all of train and reports valid.
The rows follow the fingerprint's prediction schema (docs/architecture.md): ``case``, ``task``,
``fold``, ``split``, ``label``, ``prob``, ``threshold``, ``pred``, ``model``, ``experiment`` (both the
baseline's name) and ``threshold_from`` (``inner``). Per fold the seed, the hyperparameters and, for
MRNet, whether the backbone was trained from scratch or loaded from a local file are returned for the
table's Parquet metadata (:func:`radpersona.stages.baselines.train_baseline` writes it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona.errors import ConfigError, InputDataError
from radpersona.folds import cohort_folds, fold_cases
from radpersona.settings import BaselinesSettings
from radpersona.vocabulary import BASELINES, CNN_BASELINES, VIEWS

logger = logging.getLogger("radpersona")

VolumePath = Callable[[str, str], "str | Path"]
"""``(case, view) -> path`` of the volume a CNN baseline reads."""


def load_views(path_of: VolumePath, cases: Sequence[str], views: Sequence[str] = VIEWS) -> dict[str, list[np.ndarray]]:
    """view -> standardised ``(S, H, W)`` volumes of ``cases``, read from ``path_of(case, view)``."""
    from radpersona.baselines.slices import standardise_volume
    from radpersona.volume import read_volume

    out: dict[str, list[np.ndarray]] = {v: [] for v in views}
    for case in cases:
        for view in views:
            arr, _ = read_volume(Path(path_of(case, view)), case=case, view=view)
            out[view].append(standardise_volume(arr, case=case, view=view))
    return out


@dataclass(frozen=True)
class FeatureTable:
    """What a classical baseline reads: the wide table (index ``case``), its selected columns, its file."""

    wide: pd.DataFrame
    columns: list[str]
    path: str | Path

    def matrix(self, cases: Sequence[str]) -> np.ndarray:
        """The ``(cases, columns)`` matrix (float64).

        Raises:
            InputDataError: a case is not in the table (naming the first and the file).
        """
        missing = [c for c in cases if c not in self.wide.index]
        if missing:
            raise InputDataError(f"the feature table lacks {len(missing)} cases, first {missing[0]!r}", path=self.path)
        return self.wide.loc[list(cases), list(self.columns)].to_numpy(np.float64)


def fit_fold(
    baseline: str,
    task: str,
    train: pd.DataFrame,
    reported: pd.DataFrame,
    settings: BaselinesSettings,
    inner_validation: float,
    seed: int,
    what: str,
    *,
    features: FeatureTable | None = None,
    volume_path: VolumePath | None = None,
) -> dict[str, Any]:
    """Fit ``baseline`` on one fold's training cases and score its reported cases (``prob``, ``threshold``, ...)."""
    y = train[task].to_numpy().astype(int)
    if baseline in CNN_BASELINES:
        from radpersona.baselines.elnet import fit_elnet
        from radpersona.baselines.mrnet import fit_mrnet

        assert volume_path is not None
        views = VIEWS if baseline == "mrnet" else (settings.elnet.view[task],)
        tr_vol = load_views(volume_path, train["case"].tolist(), views)
        rep_vol = load_views(volume_path, reported["case"].tolist(), views)
        if baseline == "mrnet":
            return fit_mrnet(
                tr_vol,
                y,
                rep_vol,
                settings=settings.mrnet,
                cnn=settings.cnn,
                inner_validation=inner_validation,
                seed=seed,
                label=what,
            )
        return fit_elnet(
            tr_vol[views[0]],
            y,
            rep_vol[views[0]],
            settings=settings.elnet,
            cnn=settings.cnn,
            inner_validation=inner_validation,
            seed=seed,
            label=what,
        )
    from radpersona.baselines.classical import fit_classical

    assert features is not None
    return fit_classical(
        baseline,
        features.matrix(train["case"].tolist()),
        y,
        features.matrix(reported["case"].tolist()),
        settings=settings.classical,
        inner_validation=inner_validation,
        seed=seed,
        what=what,
    )


def train_folds(
    cohort: pd.DataFrame,
    baseline: str,
    task: str,
    settings: BaselinesSettings,
    inner_validation: float,
    *,
    features: FeatureTable | None = None,
    volume_path: VolumePath | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Train ``baseline`` for ``task`` on every fold of ``cohort`` and predict the reported cases.

    Args:
        cohort: the cohort table (``case``, ``split``, ``fold``, the ``task`` label).
        baseline: one of :data:`radpersona.vocabulary.BASELINES`.
        settings: ``baselines``.
        inner_validation: ``fingerprint.inner_validation`` (the same inner split fraction).
        features: classical baselines: the wide table of ``baselines.classical.features_from`` and
            the columns that experiment's ``representation`` and ``families`` select.
        volume_path: CNN baselines: where each case's view lies (``baselines.cnn.volumes``).

    Returns:
        The predictions (every fold that reports a labelled case) and, per fold, the seed and what the
        fit reports besides probabilities (threshold, hyperparameters, sizes, ``init``).

    Raises:
        InputDataError: no fold reports a labelled case, or a case lacks features or volumes.
    """
    if baseline not in BASELINES:
        raise ConfigError(f"baselines.run: {baseline!r} is not one of {list(BASELINES)}")
    if baseline in CNN_BASELINES and volume_path is None:
        raise ConfigError(f"baseline {baseline!r} needs volumes (baselines.cnn.volumes)")
    if baseline not in CNN_BASELINES and features is None:
        raise ConfigError(f"baseline {baseline!r} needs a feature table (baselines.classical.features_from)")
    frames, per_fold = [], {}
    for fold in cohort_folds(cohort):
        train, reported = fold_cases(cohort, task, fold)
        if not len(reported):
            continue
        what = f"{baseline} {task} fold {fold}"
        fold_seed = settings.seed * 100 + (99 if fold == "all" else int(fold))
        result = fit_fold(
            baseline,
            task,
            train,
            reported,
            settings,
            inner_validation,
            fold_seed,
            what,
            features=features,
            volume_path=volume_path,
        )
        prob = np.asarray(result["prob"], dtype=np.float64)
        threshold = float(result["threshold"])
        frames.append(
            pd.DataFrame(
                {
                    "case": reported["case"].to_numpy(),
                    "task": task,
                    "fold": -1 if fold == "all" else int(fold),
                    "split": reported["split"].to_numpy(),
                    "label": reported[task].to_numpy().astype(int),
                    "prob": prob,
                    "threshold": threshold,
                    "pred": (prob >= threshold).astype(int),
                    "model": baseline,
                    "experiment": baseline,
                    "threshold_from": "inner",
                }
            )
        )
        per_fold[fold] = {"seed": fold_seed, **{k: v for k, v in result.items() if not k.startswith("prob")}}
        logger.info(
            "%s: %d training cases, %d reported, threshold %.3f, %s",
            what,
            len(train),
            len(reported),
            threshold,
            {k: v for k, v in per_fold[fold].items() if k != "seed"},
        )
    if not frames:
        raise InputDataError(f"baseline {baseline} task {task}: no fold reports any labelled case")
    return pd.concat(frames, ignore_index=True), per_fold
