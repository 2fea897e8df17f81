"""Stages of rules/fingerprint.smk: train the fingerprint per task and fold, predict, localise."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from radpersona.atomic import write_csv_atomic
from radpersona.folds import ALL_FOLD, fold_cases
from radpersona.layout import Layout
from radpersona.parquet import write_parquet
from radpersona.settings import FingerprintSettings, PreprocessSettings
from radpersona.stages import torch_threads
from radpersona.vocabulary import TASKS, VIEWS, ThresholdProtocol
from radpersona.volume import load_stack

if TYPE_CHECKING:
    from radpersona.fingerprint import TrainedFingerprint

logger = logging.getLogger("radpersona")


def _images(layout: Layout, reg: str, cases: Sequence[str], views: Sequence[str]) -> np.ndarray:
    """The ``{reg}`` branch's volumes of ``cases`` as one ``(n, V, D, H, W)`` stack."""
    files = [[layout.working(reg, case, view) for view in views] for case in cases]
    images, _ = load_stack(files, list(cases), views)
    return images


def train_fingerprint(
    *,
    results: str | Path,
    reg: str,
    grid: int,
    task: str,
    fold: str,
    out: str | Path,
    settings: Mapping[str, Any] | FingerprintSettings,
    threads: int,
    views: Sequence[str] = VIEWS,
) -> None:
    """Train the usage predictor and logistic regression of one task and fold.

    Reads the cohort, the wide table of the ``{reg}`` branch and ``grid``, and the volumes of the fold's
    training cases (:func:`radpersona.folds.fold_cases`); writes the model to ``out``.
    """
    from radpersona.features import read_wide
    from radpersona.fingerprint import fit_fingerprint, impute_training_means, select_columns

    cfg = FingerprintSettings.from_config(settings)
    layout = Layout(str(results))
    torch_threads(threads)
    cohort = pd.read_parquet(layout.cohort())
    wide, _ = read_wide(layout.wide(reg, grid))
    columns = select_columns(list(wide.columns), cfg.representation, cfg.families)
    train, _ = fold_cases(cohort, task, fold)
    X_train = wide.loc[train["case"], columns].to_numpy(np.float64)
    (X_train,) = impute_training_means(X_train)
    images = _images(layout, reg, train["case"].tolist(), views)
    y = train[task].to_numpy().astype(int)
    logger.info(
        "train_fingerprint %s fold %s: %d cases (%d positive), %d features",
        task,
        fold,
        len(y),
        int(y.sum()),
        len(columns),
    )
    model = fit_fingerprint(images, X_train, y, feature_names=columns, settings=cfg, log_label=f"{task} fold {fold}")
    model.save(Path(out))


def prediction_frame(
    cases: Sequence[str] | np.ndarray,
    splits: Sequence[str] | np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    pred: Mapping[str, np.ndarray],
    *,
    task: str,
    fold: int,
    threshold: float,
    threshold_from: str,
    experiment: str,
    model: TrainedFingerprint,
) -> pd.DataFrame:
    """The prediction table's rows (docs/architecture.md) of cases predicted by ``model`` (``pred``:
    :meth:`radpersona.fingerprint.TrainedFingerprint.predict`), with the sparsity of each case's fingerprint
    (``n_used``, ``top10_share``) and the ``lambda_u``, ``T`` and labels the model was trained with."""
    from radpersona.fingerprint import top_share

    return pd.DataFrame(
        {
            "case": np.asarray(cases),
            "task": task,
            "fold": fold,
            "split": np.asarray(splits),
            "label": labels,
            "prob": pred["prob"],
            "threshold": threshold,
            "pred": (pred["prob"] >= threshold).astype(int),
            "model": "fingerprint",
            "experiment": experiment,
            "threshold_from": threshold_from,
            "prob_soft": pred["prob_soft"],
            "n_used": pred["n_used"],
            "top10_share": top_share(model.beta[None, :] * pred["z"] * pred["r"], 10),
            "lambda_u": model.lambda_u,
            "usage_threshold": model.usage_threshold,
            "labels": model.settings.labels,
        }
    )


def predict(
    *,
    results: str | Path,
    experiment: str,
    reg: str,
    grid: int,
    task: str,
    folds: Sequence[str],
    predictions_out: str | Path,
    fingerprints_out: str | Path,
    population_out: str | Path,
    settings: Mapping[str, Any] | FingerprintSettings,
    threads: int,
    views: Sequence[str] = VIEWS,
) -> None:
    """Predict every reported case (held-out CV folds and valid) with the models of ``folds``; write
    predictions, fingerprints and the population table (beta of the model trained on all of train, with
    each feature's identity). Predictions carry per case ``n_used``, ``top10_share`` (share of
    ``sum |beta z r|`` in the 10 largest terms) and the ``lambda_u`` and ``T`` its fold's model chose on
    its inner validation split; the population table carries those of the model trained on all of train.
    The Parquet metadata records the experiment, task, ``settings`` and each fold's grid scores
    (``selection``, by fold number, -1 = all of train)."""
    from radpersona.features import read_wide
    from radpersona.fingerprint import (
        TrainedFingerprint,
        fingerprint_table,
        impute_training_means,
        population_table,
        youden_threshold,
    )

    cfg = FingerprintSettings.from_config(settings)
    layout = Layout(str(results))
    torch_threads(threads)
    cohort = pd.read_parquet(layout.cohort())
    wide, _ = read_wide(layout.wide(reg, grid))
    pred_frames, fp_frames = [], []
    selection: dict[str, list[dict[str, Any]]] = {}
    for fold in folds:
        model = TrainedFingerprint.load(Path(layout.fingerprint_model(experiment, task, fold)))
        columns = list(model.feature_names)
        train, reported = fold_cases(cohort, task, fold)
        if not len(reported):
            continue
        X_train = wide.loc[train["case"], columns].to_numpy(np.float64)
        X_rep = wide.loc[reported["case"], columns].to_numpy(np.float64)
        _, X_rep = impute_training_means(X_train, X_rep)
        images = _images(layout, reg, reported["case"].tolist(), views)
        pred = model.predict(images, X_rep)
        labels = reported[task].to_numpy().astype(int)
        threshold, source = float(model.threshold), "inner"
        if cfg.threshold_protocol == ThresholdProtocol.OPTIMISTIC:
            threshold, source = youden_threshold(labels, pred["prob"]), "reported (optimistic)"
        fold_number = -1 if fold == ALL_FOLD else int(fold)
        pred_frames.append(
            prediction_frame(
                reported["case"].to_numpy(),
                reported["split"].to_numpy(),
                labels,
                pred,
                task=task,
                fold=fold_number,
                threshold=threshold,
                threshold_from=source,
                experiment=experiment,
                model=model,
            )
        )
        fp = fingerprint_table(reported["case"].tolist(), task, pred, model)
        fp.insert(2, "fold", fold_number)
        fp.insert(3, "split", "valid" if fold == ALL_FOLD else "train")
        fp_frames.append(fp)
        selection[str(fold_number)] = model.selection
        logger.info(
            "predict %s fold %s: %d cases, median %.0f features used (lambda_u=%g, T=%g chosen on inner validation)",
            task,
            fold,
            len(reported),
            float(np.median(pred["n_used"])),
            model.lambda_u,
            model.usage_threshold,
        )
    # the (lambda_u, T) grid each fold's model was scored on, by fold number (-1: trained on all of train)
    meta = {"experiment": experiment, "task": task, "settings": cfg.to_config(), "selection": selection}
    write_parquet(pd.concat(pred_frames, ignore_index=True), predictions_out, metadata=meta)
    write_parquet(pd.concat(fp_frames, ignore_index=True), fingerprints_out, metadata=meta)
    final = TrainedFingerprint.load(Path(layout.fingerprint_model(experiment, task, ALL_FOLD)))
    population = population_table(final)
    population.insert(0, "task", task)
    population["lambda_u"] = final.lambda_u
    population["usage_threshold"] = final.usage_threshold
    write_parquet(
        population,
        population_out,
        metadata={
            **meta,
            "intercept": final.intercept,
            "threshold": final.threshold,
            "lambda_u": final.lambda_u,
            "usage_threshold": final.usage_threshold,
        },
    )


def localisation(
    *,
    results: str | Path,
    experiment: str,
    out: str | Path,
    preprocess: Mapping[str, Any] | PreprocessSettings,
    reg: str,
    box: Sequence[float],
    grid: int,
    tasks: Sequence[str] = TASKS,
    top_k: int = 10,
) -> None:
    """Share of each lesion case's top-k fingerprint features in patches that overlap its true lesion.

    Reads the cohort, the fingerprints and population table of ``experiment`` per task, and per lesion
    case and view the true lesion mask and raw volume (plus the registered volume and affine for
    ``reg == "reg"``), all through ``Layout(results)``.
    """
    from radpersona.localisation import localisation_table

    layout = Layout(str(results))
    preprocess_settings = PreprocessSettings.from_config(preprocess)
    cohort = pd.read_parquet(layout.cohort())
    frames = []
    for task in tasks:
        table = localisation_table(
            pd.read_parquet(layout.fingerprints(experiment, task)),
            pd.read_parquet(layout.population(experiment, task)),
            cohort,
            task=task,
            layout=layout,
            preprocess=preprocess_settings,
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
