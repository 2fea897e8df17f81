"""The paper's result tables (5, 7, 8): descriptive columns, mean ± sd over folds, valid with its CI.

``evaluation.tables`` names each table and its rows (experiments and baselines); :func:`paper_table`
lays out the metrics table in the paper's layout, :func:`paper_table_markdown` writes it as Markdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from radpersona.evaluation.metrics import labelled
from radpersona.markdown import markdown_table
from radpersona.vocabulary import RADIOMIC_FAMILIES

TEXTURE_FAMILIES: tuple[str, ...] = tuple(f for f in RADIOMIC_FAMILIES if f not in ("firstorder", "shape"))
"""Second-order (texture) families: the paper's "2nd RF" column."""
DESCRIPTOR_COLUMNS = ["N", "2nd RF", "UP", "Persona", "T", "Reg"]
YES, NO, NONE = "✓", "✗", "-"


def describe_experiment(experiment: Mapping[str, Any], radiomics_families: Sequence[str]) -> dict[str, str]:
    """The paper's descriptive columns of a fingerprint experiment (tables 5, 7, 8).

    Args:
        experiment: resolved experiment (``reg``, ``grid``, merged ``fingerprint`` settings), as
            :meth:`radpersona.settings.ExperimentSettings.to_config` gives it.
        radiomics_families: ``radiomics.families`` (what the wide table holds).

    Returns:
        ``N`` (``n*n*n``), ``2nd RF`` (texture families among the candidates), ``UP`` (usage
        predictor), ``Persona`` (persona or residual features), ``T`` (its candidates ``{a, b}`` when each
        model chose it on its inner validation split) and ``Reg``.
    """
    fp = experiment["fingerprint"]
    grid = int(experiment["grid"])
    families = fp.get("families") or list(radiomics_families)
    return {
        "N": f"{grid}*{grid}*{grid}",
        "2nd RF": YES if set(families) & set(TEXTURE_FAMILIES) else NO,
        "UP": YES if fp["usage_predictor"] else NO,
        "Persona": NO if fp["representation"] == "original" else YES,
        "T": _grid_text(fp["usage_threshold"]) if fp["usage_predictor"] else NONE,
        "Reg": YES if experiment["reg"] == "reg" else NO,
    }


def _grid_text(values: float | Sequence[float]) -> str:
    """One value as it is; candidates (chosen per model on its inner validation split) as ``{a, b}``."""
    grid = [values] if isinstance(values, (int, float)) else list(values)
    return f"{grid[0]:g}" if len(grid) == 1 else "{" + ", ".join(f"{v:g}" for v in grid) + "}"


def describe_baseline(
    name: str, features_experiment: Mapping[str, Any] | None, radiomics_families: Sequence[str]
) -> dict[str, str]:
    """Descriptive columns of a baseline: classical models show their feature table's N, RF, Persona
    and Reg (no usage predictor, no T); the CNNs (``mrnet``, ``elnet``) read volumes: ``-`` everywhere."""
    if features_experiment is None:
        return dict.fromkeys(DESCRIPTOR_COLUMNS, NONE)
    row = describe_experiment(features_experiment, radiomics_families)
    row["UP"], row["T"] = NO, NONE
    return row


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if len(values) == 0:
        return "n/a"
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f}±{values.std(ddof=1):.2f}"


PAPER_METRICS = (("acc", "Acc"), ("sen", "Sen"), ("spe", "Spe"), ("auc", "AUC"))
SPARSITY_LABEL = "valid features (top-10 share)"
"""Display column: median features a valid case's fingerprint uses, and the median share of its top 10."""


def paper_table(
    metrics: pd.DataFrame, rows: Sequence[str], descriptors: Mapping[str, Mapping[str, str]], tasks: Sequence[str]
) -> pd.DataFrame:
    """A result table in the paper's layout: one row per method and task.

    Columns: ``Method``, the descriptors (:data:`DESCRIPTOR_COLUMNS`), ``Type`` (task), ``Acc``,
    ``Sen``, ``Spe``, ``AUC`` as ``mean±sd`` over the cross-validation folds (split ``cv``), then
    ``valid Acc`` … ``valid AUC`` of the model trained on all of train (``valid AUC`` with its
    bootstrap 95% CI), :data:`SPARSITY_LABEL` (fingerprints: median features used by a valid case and
    median top-10 share of its ``sum |beta z r|``; ``-`` for baselines), then numeric columns
    (``cv_{metric}_mean``, ``cv_{metric}_sd``, ``valid_{metric}``, ``valid_median_n_used``,
    ``valid_median_top10_share``, ``valid_auc_ci_low/high``, ``n_folds``, ``threshold_from``).

    Raises:
        ValueError: a row has no metrics (names what exists).
    """
    out = []
    for name in rows:
        sub = metrics[metrics["experiment"] == name]
        if not len(sub):
            raise ValueError(
                f"result table row {name!r} has no metrics; metrics exist for {sorted(set(metrics['experiment']))}"
            )
        for task in tasks:
            grp = sub[sub["task"] == task]
            cv, valid = grp[grp["split"] == "cv"], grp[grp["split"] == "valid"]
            row: dict[str, Any] = {"Method": labelled(name, grp), **descriptors[name], "Type": task}
            for key, label in PAPER_METRICS:
                row[label] = _cell(cv[key])
            for key, label in PAPER_METRICS:
                value = valid[key].iloc[0] if len(valid) else float("nan")
                text = "n/a" if not np.isfinite(value) else f"{value:.2f}"
                if key == "auc" and len(valid) and np.isfinite(valid["auc_ci_low"].iloc[0]):
                    text += f" [{valid['auc_ci_low'].iloc[0]:.2f}, {valid['auc_ci_high'].iloc[0]:.2f}]"
                row[f"valid {label}"] = text
            for key, _ in PAPER_METRICS:
                row[f"cv_{key}_mean"] = float(cv[key].mean()) if len(cv) else float("nan")
                row[f"cv_{key}_sd"] = float(cv[key].std(ddof=1)) if len(cv) > 1 else float("nan")
                row[f"valid_{key}"] = float(valid[key].iloc[0]) if len(valid) else float("nan")
            used = float(valid["median_n_used"].iloc[0]) if len(valid) and "median_n_used" in valid else float("nan")
            share = float(valid["median_top10_share"].iloc[0]) if np.isfinite(used) else float("nan")
            row[SPARSITY_LABEL] = f"{used:.0f} ({share:.2f})" if np.isfinite(used) else NONE
            row["valid_median_n_used"], row["valid_median_top10_share"] = used, share
            row["valid_auc_ci_low"] = float(valid["auc_ci_low"].iloc[0]) if len(valid) else float("nan")
            row["valid_auc_ci_high"] = float(valid["auc_ci_high"].iloc[0]) if len(valid) else float("nan")
            row["n_folds"] = int(len(cv))
            row["threshold_from"] = ", ".join(sorted(set(grp["threshold_from"].astype(str))))
            out.append(row)
    return pd.DataFrame(out)


TABLE_NOTE = (
    "Acc, Sen, Spe, AUC: mean±sd over the patient-level cross-validation folds of the train split (each fold's "
    "model reports the cases it held out). valid: the model trained on all of train, evaluated once on the valid "
    "split (MRNet's public tuning set for MRNet data, not the paper's hidden test set); valid AUC with a percentile "
    "bootstrap 95% CI. Thresholds: each model's own, Youden's J on an inner validation split of its training fold "
    "(column threshold_from). valid features (top-10 share): median number of features a valid case's fingerprint "
    "uses (z = 1) and median share of its sum |beta z r| that its 10 largest terms carry. N: patches; 2nd RF: "
    "texture families among the candidates; UP: usage predictor; T: usage threshold ({a, b}: candidates, each "
    "model chose one on its inner validation split); Reg: registration; '-': not applicable (CNN baselines read "
    "volumes)."
)


def frame_markdown(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """A Markdown table of ``columns`` of ``frame``: floats with 3 significant digits (``n/a`` if not finite)."""
    rows = ([_md_value(v) for v in row] for row in frame[list(columns)].itertuples(index=False))
    return markdown_table(list(columns), rows)


def _md_value(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else f"{value:.3g}"
    return str(value)


def paper_table_markdown(table: pd.DataFrame, title: str) -> str:
    """Markdown of a :func:`paper_table` (display columns only) with its split note."""
    display = [
        "Method",
        *DESCRIPTOR_COLUMNS,
        "Type",
        *[label for _, label in PAPER_METRICS],
        *[f"valid {label}" for _, label in PAPER_METRICS],
        SPARSITY_LABEL,
    ]
    return f"## {title}\n\n{frame_markdown(table, display)}\n\n{TABLE_NOTE}\n"


def written_tables(tables: Mapping[str, Sequence[str]], models: Sequence[str]) -> dict[str, list[str]]:
    """The tables of ``evaluation.tables`` whose rows all have predictions (``models``: experiments and
    baselines that run); a table naming a baseline outside an empty ``baselines.run`` is left out."""
    return {name: list(rows) for name, rows in tables.items() if set(rows) <= set(models)}
