"""Stage of rules/baselines.smk: classical radiomics and CNN baselines on the fingerprint's folds."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from radpersona.layout import Layout
from radpersona.settings import BaselinesSettings, FingerprintColumnsSettings
from radpersona.stages import torch_threads
from radpersona.vocabulary import CNN_BASELINES

logger = logging.getLogger("radpersona")


def train_baseline(
    *,
    results: str | Path,
    baseline: str,
    task: str,
    baselines: Mapping[str, Any] | BaselinesSettings,
    inner_validation: float,
    threads: int,
    table: str | Path | None = None,
    columns: Mapping[str, Any] | FingerprintColumnsSettings | None = None,
) -> None:
    """Rule train_baseline: ``baseline`` for ``task`` on every fold; ``predictions/{baseline}_{task}.parquet``.

    The table's Parquet metadata records the ``baselines`` settings, ``inner_validation``, per fold the
    seed and hyperparameters, the run time and, for a CNN, its volume folder and backbone
    initialisation, for a classical baseline its feature table and number of columns.

    Args:
        results: the results folder (cohort, volumes, output).
        baseline: a name of ``baselines.run``.
        task: ``abn``, ``acl`` or ``men``.
        baselines: the ``baselines`` section.
        inner_validation: ``fingerprint.inner_validation`` (the fingerprint's inner split fraction).
        threads: torch threads.
        table, columns: classical baselines: the wide table of ``baselines.classical.features_from``
            and that experiment's ``representation`` and ``families`` (which columns it reads).
    """
    from radpersona.baselines.run import FeatureTable, VolumePath, train_folds
    from radpersona.parquet import write_parquet

    settings = BaselinesSettings.from_config(baselines)
    layout = Layout(str(results))
    torch_threads(threads)
    cohort = pd.read_parquet(layout.cohort())
    features: FeatureTable | None = None
    volume_path: VolumePath | None = None
    if baseline in CNN_BASELINES:
        volume_path = functools.partial(layout.volume, settings.cnn.volumes)
    elif table is not None and columns is not None:
        from radpersona.features import read_wide
        from radpersona.fingerprint import select_columns

        selection = FingerprintColumnsSettings.from_config(columns)
        wide, _ = read_wide(table)
        families = None if selection.families is None else list(selection.families)
        features = FeatureTable(
            wide, select_columns(list(wide.columns), selection.representation.value, families), table
        )
    start = time.perf_counter()
    frame, per_fold = train_folds(
        cohort, baseline, task, settings, inner_validation, features=features, volume_path=volume_path
    )
    meta: dict[str, Any] = {
        "baseline": baseline,
        "task": task,
        "settings": settings.to_config(),
        "inner_validation": inner_validation,
        "folds": per_fold,
        "seconds": round(time.perf_counter() - start, 1),
    }
    if baseline in CNN_BASELINES:
        meta["volumes"] = str(Path(layout.volume_dir(settings.cnn.volumes)))
        meta["init"] = sorted({str(f.get("init")) for f in per_fold.values()})
        logger.info("%s %s: backbone %s", baseline, task, ", ".join(meta["init"]))
    else:
        assert features is not None
        meta["feature_table"] = str(table)
        meta["n_columns"] = len(features.columns)
    write_parquet(frame, layout.predictions(baseline, task), metadata=meta)
