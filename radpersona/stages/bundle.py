"""Stage of rules/bundle.smk: the model bundle of one experiment and task (:mod:`radpersona.bundle`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona.bundle import REG_ALADIN, current_versions, write_manifest
from radpersona.errors import InputDataError
from radpersona.folds import ALL_FOLD, fold_cases
from radpersona.layout import BundleLayout, Layout
from radpersona.parquet import write_parquet
from radpersona.volume import write_json_atomic

logger = logging.getLogger("radpersona")


def bundle(
    *,
    results: str | Path,
    experiment: str,
    task: str,
    out: str | Path,
    ddpm: str | Path,
    settings: Mapping[str, Any],
    views: Sequence[str],
    directions: Mapping[str, Sequence[float]],
) -> None:
    """Rule ``bundle``: copy what explaining a new exam needs into ``out`` (``Layout.bundle_dir``), atomically.

    Reads from ``Layout(results)``: the registration references of ``views`` and the first one's sidecar
    (the reg_aladin version; ``reg`` experiments), the fingerprint model trained on all of train,
    the cohort and wide table (the training means that replace a missing value, as ``predict`` computes
    them) and the predictions (the threshold ``predict`` applied to the cases that model reported).

    Args:
        ddpm: the persona model of the reported cases, copied as the bundle's ``ddpm.pt``: the branch's DDPM
            of all healthy training cases, or ``persona.checkpoint`` when the run used one.
        settings: ``config.json``'s settings: ``reg``, ``grid`` (the experiment's), ``source_kind``,
            and the sections ``preprocess``, ``registration``, ``persona`` (``box``, ``sample``, ``device``),
            ``radiomics``, ``fingerprint`` (the experiment's) and ``report``.
        views: the source's views (what an exam must have).
        directions: per view, the direction cosines of the cohort's source images (an exam must match them).
    """
    from radpersona.features import read_wide
    from radpersona.fingerprint import TrainedFingerprint, training_means

    layout = Layout(str(results))
    reg, grid = str(settings["reg"]), int(settings["grid"])
    model_file = Path(layout.fingerprint_model(experiment, task, ALL_FOLD))
    model = TrainedFingerprint.load(model_file)
    cohort = pd.read_parquet(layout.cohort())
    wide, _ = read_wide(layout.wide(reg, grid))
    train, _ = fold_cases(cohort, task, ALL_FOLD)
    X_train = wide.loc[train["case"], model.feature_names].to_numpy(np.float64)
    means = training_means(X_train)  # what predict imputes a reported case's missing values with
    predictions = pd.read_parquet(layout.predictions(experiment, task))
    reported = predictions[predictions["fold"] == -1]
    if reported.empty or reported["threshold"].nunique() != 1:
        raise InputDataError(
            "expected one threshold for the cases of the model trained on all of train (fold -1)",
            path=layout.predictions(experiment, task),
            value=sorted(reported["threshold"].unique().tolist()),
        )
    config = {
        "experiment": experiment,
        "task": task,
        "views": list(views),
        "directions": {v: [float(d) for d in directions[v]] for v in views},
        "threshold": float(reported["threshold"].iloc[0]),
        "threshold_from": str(reported["threshold_from"].iloc[0]),
        **dict(settings),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        files = BundleLayout(str(work))
        if reg == "reg":
            for view in views:
                shutil.copyfile(layout.reference(view), files.reference(view))
        shutil.copyfile(ddpm, files.ddpm())
        shutil.copyfile(model_file, files.fingerprint_model())
        imputation = pd.DataFrame({"feature": model.feature_names, "mean": means})
        write_parquet(imputation, files.imputation())
        write_json_atomic(files.config(), config)
        versions = current_versions(reg_aladin=False)
        if reg == "reg":  # the reg_aladin that made the references (their sidecars record it)
            sidecar = json.loads(Path(layout.reference_sidecar(views[0])).read_text(encoding="utf-8"))
            versions[REG_ALADIN] = str(sidecar["reg_aladin"])
        write_json_atomic(files.versions(), versions)
        checksums = write_manifest(files)
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info("bundle %s_%s: %d files -> %s", experiment, task, len(checksums) + 1, out)
