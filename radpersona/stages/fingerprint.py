"""Stages of rules/fingerprint.smk: train the fingerprint per task and fold, predict, localise."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona.atomic import write_csv_atomic
from radpersona.parquet import write_parquet
from radpersona.settings import FingerprintSettings
from radpersona.stages import torch_threads
from radpersona.vocabulary import VIEWS
from radpersona.volume import load_stack

logger = logging.getLogger("radpersona")


def _impute_training_means(X_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Replace missing values by the training fold's column means (0 where a column is all missing)."""
    with np.errstate(invalid="ignore"):
        means = np.nanmean(np.where(np.isfinite(X_train), X_train, np.nan), axis=0)
    means = np.where(np.isfinite(means), means, 0.0)
    out = []
    for X in (X_train, *others):
        X = X.copy()
        bad = ~np.isfinite(X)
        if bad.any():
            X[bad] = np.take(means, np.nonzero(bad)[1])
        out.append(X)
    return out


def _task_data(cohort: pd.DataFrame, task: str, fold: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and reported cases of a fold (``all`` = train vs valid), cases without a label dropped."""
    labelled = cohort[cohort[task].notna()]
    if fold == "all":
        return labelled[labelled["split"] == "train"], labelled[labelled["split"] == "valid"]
    k = int(fold)
    train = labelled[(labelled["split"] == "train") & (labelled["fold"] != k)]
    return train, labelled[(labelled["split"] == "train") & (labelled["fold"] == k)]


def train_fingerprint(
    cohort_path: str | Path,
    wide_path: str | Path,
    volumes: str | Path,
    out: str | Path,
    task: str,
    fold: str,
    settings: Mapping[str, Any],
    threads: int,
    views: Sequence[str] = VIEWS,
) -> None:
    """Train the usage predictor and logistic regression of one task and fold."""
    from radpersona.features import read_wide
    from radpersona.fingerprint import fit_fingerprint, select_columns

    cfg = FingerprintSettings.from_config(settings)
    torch_threads(threads)
    cohort = pd.read_parquet(cohort_path)
    wide, _ = read_wide(wide_path)
    columns = select_columns(list(wide.columns), cfg.representation, cfg.families)
    train, _ = _task_data(cohort, task, fold)
    X_train = wide.loc[train["case"], columns].to_numpy(np.float64)
    (X_train,) = _impute_training_means(X_train)
    images, _ = load_stack(
        [[Path(volumes) / f"{c}_{v}.nii.gz" for v in views] for c in train["case"].tolist()],
        train["case"].tolist(),
        views,
    )
    y = train[task].to_numpy().astype(int)
    logger.info(
        "train_fingerprint %s fold %s: %d cases (%d positive), %d features",
        task,
        fold,
        len(y),
        int(y.sum()),
        len(columns),
    )
    model = fit_fingerprint(
        images,
        X_train,
        y,
        feature_names=columns,
        settings=cfg,
        log_label=f"{task} fold {fold}",
    )
    model.save(Path(out))


def predict(
    cohort_path: str | Path,
    wide_path: str | Path,
    volumes: str | Path,
    models: Mapping[str, str],
    predictions_out: str | Path,
    fingerprints_out: str | Path,
    population_out: str | Path,
    experiment: str,
    task: str,
    settings: Mapping[str, Any],
    threads: int,
    views: Sequence[str] = VIEWS,
) -> None:
    """Predict every reported case (held-out CV folds and valid); write predictions, fingerprints and
    the population table (beta of the model trained on all of train, with each feature's identity)."""
    from radpersona.features import read_wide
    from radpersona.fingerprint import TrainedFingerprint, fingerprint_table, population_table, youden_threshold

    torch_threads(threads)
    cohort = pd.read_parquet(cohort_path)
    wide, _ = read_wide(wide_path)
    pred_frames, fp_frames = [], []
    for fold, path in models.items():
        model = TrainedFingerprint.load(Path(path))
        columns = list(model.feature_names)
        train, reported = _task_data(cohort, task, fold)
        if not len(reported):
            continue
        X_train = wide.loc[train["case"], columns].to_numpy(np.float64)
        X_rep = wide.loc[reported["case"], columns].to_numpy(np.float64)
        _, X_rep = _impute_training_means(X_train, X_rep)
        images, _ = load_stack(
            [[Path(volumes) / f"{c}_{v}.nii.gz" for v in views] for c in reported["case"].tolist()],
            reported["case"].tolist(),
            views,
        )
        pred = model.predict(images, X_rep)
        labels = reported[task].to_numpy().astype(int)
        threshold, source = float(model.threshold), "inner"
        if settings["threshold_protocol"] == "optimistic":
            threshold, source = youden_threshold(labels, pred["prob"]), "reported (optimistic)"
        pred_frames.append(
            pd.DataFrame(
                {
                    "case": reported["case"].to_numpy(),
                    "task": task,
                    "fold": -1 if fold == "all" else int(fold),
                    "split": reported["split"].to_numpy(),
                    "label": labels,
                    "prob": pred["prob"],
                    "threshold": threshold,
                    "pred": (pred["prob"] >= threshold).astype(int),
                    "model": "fingerprint",
                    "experiment": experiment,
                    "threshold_from": source,
                    "prob_soft": pred["prob_soft"],
                    "n_used": pred["n_used"],
                }
            )
        )
        fp = fingerprint_table(reported["case"].tolist(), task, pred, model)
        fp.insert(2, "fold", -1 if fold == "all" else int(fold))
        fp.insert(3, "split", "valid" if fold == "all" else "train")
        fp_frames.append(fp)
        logger.info(
            "predict %s fold %s: %d cases, mean %.1f features used",
            task,
            fold,
            len(reported),
            float(np.mean(pred["n_used"])),
        )
    meta = {"experiment": experiment, "task": task, "settings": dict(settings)}
    write_parquet(pd.concat(pred_frames, ignore_index=True), predictions_out, metadata=meta)
    write_parquet(pd.concat(fp_frames, ignore_index=True), fingerprints_out, metadata=meta)
    final = TrainedFingerprint.load(Path(models["all"]))
    population = population_table(final)
    population.insert(0, "task", task)
    write_parquet(
        population, population_out, metadata={**meta, "intercept": final.intercept, "threshold": final.threshold}
    )


def localisation(
    cohort_path: str | Path,
    fingerprints: Mapping[str, str],
    populations: Mapping[str, str],
    out: str | Path,
    results: str | Path,
    preprocess: Mapping[str, Any],
    reg: str,
    box: Sequence[float],
    grid: int,
    top_k: int = 10,
) -> None:
    """Share of each lesion case's top-k fingerprint features in patches that overlap its true lesion."""
    from radpersona.localisation import localisation_table

    cohort = pd.read_parquet(cohort_path)
    frames = []
    for task, path in fingerprints.items():
        fp = pd.read_parquet(path)
        table = localisation_table(
            fp,
            pd.read_parquet(populations[task]),
            cohort,
            task=task,
            results=results,
            preprocess=preprocess,
            reg=reg,
            box=box,
            grid=grid,
            top_k=top_k,
        )
        frames.append(table)
        if len(table):
            logger.info(
                "localisation %s: %d lesion cases, top-%d share in lesion patches %.3f vs chance %.3f",
                task,
                len(table),
                top_k,
                table["top_share"].mean(),
                table["chance_share"].mean(),
            )
    table = pd.concat(frames, ignore_index=True)
    write_csv_atomic(table, out)
