"""Stages of rules/evaluate.smk: metrics, the paper's tables with tests, ROC and calibration plots."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from radpersona.atomic import write_csv_atomic
from radpersona.evaluation import stage_plots as plots  # noqa: F401
from radpersona.evaluation import stage_tables as tables  # noqa: F401

logger = logging.getLogger("radpersona")


def metrics(
    prediction_paths: Sequence[str], out_csv: str | Path, out_md: str | Path, evaluation: Mapping[str, Any]
) -> None:
    """Metrics of every prediction table (Acc, Sen, Spe, AUC per task, fold and split)."""
    from radpersona.evaluation import metrics_table, summary_table

    preds = [pd.read_parquet(p) for p in prediction_paths]
    table = metrics_table(preds, n_boot=evaluation["bootstrap"], seed=evaluation["seed"])
    write_csv_atomic(table, out_csv)
    summary = summary_table(table)
    lines = ["| " + " | ".join(summary.columns) + " |", "|" + "---|" * len(summary.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in summary.itertuples(index=False)]
    note = (
        "\n\n`cv` = mean ± sd over the patient-level cross-validation folds of train; `valid` = the model "
        "trained on all of train, evaluated on the valid split (MRNet's public tuning set for MRNet data).\n"
    )
    Path(out_md).write_text("\n".join(lines) + note, encoding="utf-8")
    logger.info("metrics:\n%s", summary.to_string(index=False))
