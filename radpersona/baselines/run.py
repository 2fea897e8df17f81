"""Rule ``train_baseline``: one baseline and task over every cross-validation fold and valid.

The folds are the cohort's (``cohort.parquet`` column ``fold``, patient-level): fold ``k`` trains on
the other training folds and reports fold ``k``; ``all`` trains on all of train and reports valid.
The output follows the fingerprint's prediction schema (docs/architecture.md): ``case``, ``task``,
``fold``, ``split``, ``label``, ``prob``, ``threshold``, ``pred``, ``model``, ``experiment`` (both the
baseline's name) and ``threshold_from`` (``inner``). Its Parquet metadata records the settings,
seeds, per-fold hyperparameters and, for MRNet, whether the backbone was trained from scratch or
loaded from a local file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona import VIEWS
from radpersona.errors import ConfigError, InputDataError

logger = logging.getLogger("radpersona")

CNN_KINDS: tuple[str, ...] = ("mrnet", "elnet")
BASELINE_KINDS: tuple[str, ...] = ("lr_l1", "lr_l2", "svm", "rf", *CNN_KINDS)
"""Every baseline name ``baselines.run`` may list."""


def fold_cases(cohort: pd.DataFrame, task: str, fold: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and reported cases of ``fold`` (``all`` = train vs valid); unlabelled cases dropped."""
    if task not in cohort.columns:
        raise InputDataError(f"cohort has no label column {task!r}")
    labelled = cohort[cohort[task].notna()]
    train = labelled[labelled["split"] == "train"]
    if fold == "all":
        return train, labelled[labelled["split"] == "valid"]
    k = int(fold)
    return train[train["fold"] != k], train[train["fold"] == k]


def cohort_folds(cohort: pd.DataFrame) -> list[str]:
    """The cross-validation folds present on train (as strings), then ``all``."""
    folds = sorted(int(f) for f in cohort.loc[cohort["split"] == "train", "fold"].unique() if int(f) >= 0)
    return [str(f) for f in folds] + ["all"]


def load_views(folder: str | Path, cases: Sequence[str], views: Sequence[str] = VIEWS) -> dict[str, list[np.ndarray]]:
    """view -> standardised ``(S, H, W)`` volumes of ``cases`` read from ``folder/{case}_{view}.nii.gz``."""
    from radpersona.baselines.slices import standardise_volume
    from radpersona.volume import read_volume

    out: dict[str, list[np.ndarray]] = {v: [] for v in views}
    for case in cases:
        for view in views:
            arr, _ = read_volume(Path(folder) / f"{case}_{view}.nii.gz", case=case, view=view)
            out[view].append(standardise_volume(arr, case=case, view=view))
    return out


def _feature_matrix(wide: pd.DataFrame, cases: Sequence[str], columns: Sequence[str], table: str | Path) -> np.ndarray:
    missing = [c for c in cases if c not in wide.index]
    if missing:
        raise InputDataError(f"the feature table lacks {len(missing)} cases, first {missing[0]!r}", path=table)
    return wide.loc[list(cases), list(columns)].to_numpy(np.float64)


def stage_train_baseline(
    cohort_path: str | Path,
    baseline: str,
    task: str,
    out: str | Path,
    settings: Mapping[str, Any],
    inner_validation: float,
    threads: int,
    table_path: str | Path | None = None,
    feature_settings: Mapping[str, Any] | None = None,
    volumes_dir: str | Path | None = None,
) -> None:
    """Train ``baseline`` for ``task`` on every fold, predict the reported cases, write the predictions.

    Args:
        cohort_path: ``results/cohort.parquet``.
        baseline: one of :data:`BASELINE_KINDS`.
        task: ``abn``, ``acl`` or ``men``.
        out: ``results/predictions/{baseline}_{task}.parquet``.
        settings: the ``baselines`` config section.
        inner_validation: ``fingerprint.inner_validation`` (the same inner split fraction).
        threads: torch threads.
        table_path, feature_settings: classical baselines: the wide table of
            ``baselines.classical.features_from`` and that experiment's fingerprint settings
            (``representation``, ``families`` select the columns).
        volumes_dir: CNN baselines: the folder of ``{case}_{view}.nii.gz`` (``baselines.cnn.volumes``).
    """
    import torch

    from radpersona.parquet import write_parquet

    if baseline not in BASELINE_KINDS:
        raise ConfigError(f"baselines.run: {baseline!r} is not one of {list(BASELINE_KINDS)}")
    torch.set_num_threads(max(1, int(threads)))
    cohort = pd.read_parquet(cohort_path)
    seed = int(settings["seed"])
    frames, per_fold = [], {}
    wide = columns = None
    if baseline not in CNN_KINDS:
        from radpersona.features import read_wide
        from radpersona.fingerprint import select_columns

        if table_path is None or feature_settings is None:
            raise ConfigError(f"baseline {baseline!r} needs a feature table (baselines.classical.features_from)")
        wide, _ = read_wide(table_path)
        columns = select_columns(
            list(wide.columns), feature_settings["representation"], feature_settings.get("families")
        )
    elif volumes_dir is None:
        raise ConfigError(f"baseline {baseline!r} needs a volume folder (baselines.cnn.volumes)")
    start = time.perf_counter()
    for fold in cohort_folds(cohort):
        train, reported = fold_cases(cohort, task, fold)
        if not len(reported):
            continue
        y = train[task].to_numpy().astype(int)
        what = f"{baseline} {task} fold {fold}"
        fold_seed = seed * 100 + (99 if fold == "all" else int(fold))
        if baseline in CNN_KINDS:
            from radpersona.baselines.elnet import fit_elnet
            from radpersona.baselines.mrnet import fit_mrnet

            views = VIEWS if baseline == "mrnet" else (settings["elnet"]["view"][task],)
            tr_vol = load_views(volumes_dir, train["case"].tolist(), views)
            rep_vol = load_views(volumes_dir, reported["case"].tolist(), views)
            if baseline == "mrnet":
                result = fit_mrnet(
                    tr_vol,
                    y,
                    rep_vol,
                    settings=settings["mrnet"],
                    cnn=settings["cnn"],
                    inner_validation=inner_validation,
                    seed=fold_seed,
                    label=what,
                )
            else:
                result = fit_elnet(
                    tr_vol[views[0]],
                    y,
                    rep_vol[views[0]],
                    settings=settings["elnet"],
                    cnn=settings["cnn"],
                    inner_validation=inner_validation,
                    seed=fold_seed,
                    label=what,
                )
        else:
            from radpersona.baselines.classical import fit_classical

            X_tr = _feature_matrix(wide, train["case"].tolist(), columns, table_path)
            X_rep = _feature_matrix(wide, reported["case"].tolist(), columns, table_path)
            result = fit_classical(
                baseline,
                X_tr,
                y,
                X_rep,
                settings=settings["classical"],
                inner_validation=inner_validation,
                seed=fold_seed,
                what=what,
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
    meta = {
        "baseline": baseline,
        "task": task,
        "settings": dict(settings),
        "inner_validation": inner_validation,
        "folds": per_fold,
        "seconds": round(time.perf_counter() - start, 1),
    }
    if baseline in CNN_KINDS:
        meta["volumes"] = str(volumes_dir)
        meta["init"] = sorted({str(f.get("init")) for f in per_fold.values()})
        logger.info("%s %s: backbone %s", baseline, task, ", ".join(meta["init"]))
    else:
        meta["feature_table"] = str(table_path)
        meta["n_columns"] = len(columns)
    write_parquet(pd.concat(frames, ignore_index=True), out, metadata=meta)
