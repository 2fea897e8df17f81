"""Stage of rules/audit.smk: the signal audit (issue #14) of a cohort with truth (the synthetic source).

How much lesion signal survives each stage, per task (abn: any lesion, acl: ACL tear, men: meniscal tear)
and view, with the library functions of :mod:`radpersona.audit`:

- lesion voxels and lesion-vs-healthy contrast-to-noise ratio (CNR) after ingest (``raw``), preprocessing
  (``pre``) and on the working grid of the experiment's branch (``working``: registered for ``reg``, the
  preprocessed grid again for ``noreg``). The healthy counterpart is the case's truth brought onto each grid as
  :mod:`radpersona.truth` does; the noise is estimated once on the raw counterpart and carried to the later
  grids through resampling and the normalisation's scale (:func:`radpersona.audit.propagated_noise_sd`);
- the persona residual inside versus outside the lesion, within the persona box;
- the oracle ceiling of patch radiomics: the best single feature of the wide table at the patch that holds the
  training positives' lesion, chosen on train, AUC on valid (:func:`radpersona.audit.oracle_patch_auc`);
- the whole-volume first-order floor (logistic regression on eight whole-volume statistics of the working
  volumes, :func:`radpersona.audit.first_order_floor`);
- the fingerprint's own AUC (the experiment's predictions: valid, and the mean over the CV folds as in
  ``metrics.csv``).

A case counts for a task and view when its label for the task is 1 and its truth mask holds the task's
lesion codes in that view; cases without it are left out of the lesion rows (but stay in the AUCs).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona.atomic import write_csv_atomic, write_text_atomic
from radpersona.layout import Layout
from radpersona.settings import PreprocessSettings
from radpersona.vocabulary import TASKS, VIEWS

logger = logging.getLogger("radpersona")

#: Stages of the lesion measurements, in order.
AUDIT_STAGES: tuple[str, ...] = ("raw", "pre", "working")

#: Columns of ``tables/signal_audit.csv``.
AUDIT_COLUMNS: tuple[str, ...] = (
    "task",
    "view",
    "n_cases",
    *(f"{stage}_{what}" for stage in AUDIT_STAGES for what in ("voxels", "cnr", "survival")),
    "residual_in",
    "residual_out",
    "residual_ratio",
    "oracle_auc",
    "oracle_ci_low",
    "oracle_ci_high",
    "oracle_feature",
    "floor_auc",
    "fingerprint_auc_valid",
    "fingerprint_auc_cv",
    "experiment",
    "reg",
    "grid",
)

#: The ``view`` of a task's row over every view.
ALL_VIEWS = "all"

Patch = tuple[int, int, int]


@dataclass
class LesionMeasure:
    """One lesion (task, case, view): voxels and CNR per stage, residual in vs out, main patch."""

    task: str
    case: str
    view: str
    voxels: dict[str, int] = field(default_factory=dict)
    cnr: dict[str, float] = field(default_factory=dict)
    residual_in: float = float("nan")
    residual_out: float = float("nan")
    residual_ratio: float = float("nan")
    main_patch: Patch | None = None


def measure_case_view(
    *,
    raw: np.ndarray,
    healthy_raw: np.ndarray,
    codes_mask: np.ndarray,
    pre: np.ndarray,
    working: np.ndarray,
    residual: np.ndarray,
    preprocess: PreprocessSettings,
    tasks: Mapping[str, Sequence[int]],
    box: Sequence[float],
    grid: int,
    to_working: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None = None,
    case: str,
    view: str,
) -> list[LesionMeasure]:
    """Lesion measurements of one case and view for each task in ``tasks`` (task -> its lesion codes).

    Args:
        raw, healthy_raw, codes_mask: the ingested volume, its true healthy counterpart and the lesion code mask
            (raw grid).
        pre: the preprocessed volume (the pipeline's file); ``working``: the working-grid volume; ``residual``:
            the persona residual on the working grid.
        preprocess: the preprocess settings the pipeline used.
        tasks: the tasks to measure and their codes (callers pass only the tasks the case has in this view).
        box, grid: ``persona.box`` and the experiment's patch grid (main lesion patch, residual box).
        to_working: ``None`` when the working grid is the preprocessed grid (``noreg``); else a function taking
            a list of preprocessed-grid arrays and returning them on the working grid (one ``reg_resample``
            call, :func:`radpersona.truth.reg_resample_stack`).
        case, view: named in errors and in the rows.
    """
    from radpersona.audit import (
        box_share,
        lesion_cnr,
        lesion_fraction_array,
        noise_sd,
        preprocess_with_counterparts,
        residual_contrast,
    )
    from radpersona.preprocess import to_grid

    if not tasks:
        return []
    sigma_raw = noise_sd(healthy_raw, case=case, view=view)
    shape = preprocess.shape
    counterparts = preprocess_with_counterparts(raw, [healthy_raw], preprocess, case=case, view=view)
    healthy_pre, scale = counterparts.counterparts[0], counterparts.scale
    # unit raw noise carried to the preprocessed grid (resampling x normalisation scale), then onward
    z = np.random.default_rng(0).standard_normal(raw.shape).astype(np.float32)
    noise_pre = to_grid(z, (1.0, 1.0, 1.0), shape, preprocess.interpolation, crop=preprocess.crop)[0] * np.float32(
        scale
    )
    sigma_pre = sigma_raw * float(noise_pre.std())
    fractions_raw = {t: lesion_fraction_array(codes_mask, codes, raw.shape) for t, codes in tasks.items()}
    fractions_pre = {
        t: lesion_fraction_array(codes_mask, codes, shape, crop=preprocess.crop) for t, codes in tasks.items()
    }
    if to_working is None:
        healthy_w, sigma_w, fractions_w = healthy_pre, sigma_pre, fractions_pre
    else:
        carried = to_working([healthy_pre, noise_pre, np.ones(shape, np.float32), *fractions_pre.values()])
        healthy_w, noise_w, inside = carried[0], carried[1], carried[2] >= 0.999
        sigma_w = sigma_raw * float(noise_w[inside].std()) if inside.any() else float("nan")
        fractions_w = {t: np.clip(f, 0.0, 1.0) for t, f in zip(tasks, carried[3:])}
    out = []
    for task in tasks:
        m = LesionMeasure(task=task, case=case, view=view)
        for stage, image, healthy, fraction, sigma in (
            ("raw", raw, healthy_raw, fractions_raw[task], sigma_raw),
            ("pre", pre, healthy_pre, fractions_pre[task], sigma_pre),
            ("working", working, healthy_w, fractions_w[task], sigma_w),
        ):
            contrast = lesion_cnr(image, healthy, fraction, noise=sigma, case=case, view=view)
            m.voxels[stage], m.cnr[stage] = contrast.n_voxels, contrast.cnr
        res = residual_contrast(residual, fractions_w[task], box, case=case, view=view)
        m.residual_in, m.residual_out, m.residual_ratio = res.inside, res.outside, res.ratio
        m.main_patch = box_share(fractions_w[task], box, grids=(grid,), case=case, view=view).main_patch[grid]
        out.append(m)
    return out


def _median(values: Sequence[float]) -> float:
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.median(finite)) if finite else float("nan")


def _lesion_columns(measures: Sequence[LesionMeasure], per_case_any: bool) -> dict[str, float]:
    """Medians (lesion voxels, |CNR|) and survival shares per stage, residual medians.

    ``per_case_any``: the lesions of one case in several views count once (voxels and |CNR| of its best
    view, survival in any view), for the row over every view.
    """
    from radpersona.audit import survives

    row: dict[str, float] = {"n_cases": len({m.case for m in measures})}
    for stage in AUDIT_STAGES:
        per_case: dict[str, list[LesionMeasure]] = {}
        for m in measures:
            per_case.setdefault(m.case if per_case_any else f"{m.case}/{m.view}", []).append(m)
        voxels = [max(m.voxels[stage] for m in ms) for ms in per_case.values()]
        cnrs = [
            max((abs(m.cnr[stage]) for m in ms if not math.isnan(m.cnr[stage])), default=math.nan)
            for ms in per_case.values()
        ]
        alive = [any(survives(m.voxels[stage], m.cnr[stage]) for m in ms) for ms in per_case.values()]
        row[f"{stage}_voxels"] = _median(voxels)
        row[f"{stage}_cnr"] = _median(cnrs)
        row[f"{stage}_survival"] = float(np.mean(alive)) if alive else float("nan")
    row["residual_in"] = _median([m.residual_in for m in measures])
    row["residual_out"] = _median([m.residual_out for m in measures])
    row["residual_ratio"] = _median([m.residual_ratio for m in measures])
    return row


def fingerprint_aucs(predictions: pd.DataFrame) -> tuple[float, float]:
    """AUC on valid and mean AUC over the CV folds of train (folds with one class skipped), as ``metrics.csv``."""
    from radpersona.evaluation import auc

    valid = predictions[predictions["split"] == "valid"]
    auc_valid = auc(valid["label"].to_numpy(), valid["prob"].to_numpy()) if len(valid) else float("nan")
    folds = [
        auc(grp["label"].to_numpy(), grp["prob"].to_numpy())
        for _, grp in predictions[predictions["split"] == "train"].groupby("fold")
    ]
    finite = [a for a in folds if not math.isnan(a)]
    return auc_valid, float(np.mean(finite)) if finite else float("nan")


def audit_table(
    measures: Sequence[LesionMeasure],
    *,
    cohort: pd.DataFrame,
    wide: pd.DataFrame,
    working: Mapping[str, Mapping[str, np.ndarray]],
    predictions: Mapping[str, pd.DataFrame],
    views: Sequence[str],
    tasks: Sequence[str] = TASKS,
    bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """The audit table: one row per task and view, then the task's row over every view (``view = all``).

    Args:
        measures: :func:`measure_case_view` of every lesion case and view.
        cohort: the cohort table (``case``, ``split``, task labels).
        wide: the experiment's wide feature table (index ``case``).
        working: ``working[case][view]``, the working-grid volumes of every case (the floor's input).
        predictions: task -> the experiment's predictions (fingerprint AUCs).
        views, tasks: row order.
        bootstrap, seed: bootstrap resamples and seed of the oracle's and floor's CIs.
    """
    from radpersona.audit import first_order_floor, first_order_table, oracle_patch_auc

    labelled = cohort.set_index(cohort["case"].astype(str))
    train = labelled["split"] == "train"
    floor_features = first_order_table({c: {v: working[c][v] for v in views} for c in labelled.index})
    rows = []
    for task in tasks:
        labels = labelled[task]
        task_measures = [m for m in measures if m.task == task]
        auc_valid, auc_cv = fingerprint_aucs(predictions[task]) if task in predictions else (float("nan"), float("nan"))
        for view in [*views, ALL_VIEWS]:
            in_view = [m for m in task_measures if view in (ALL_VIEWS, m.view)]
            row: dict[str, Any] = {"task": task, "view": view, **_lesion_columns(in_view, view == ALL_VIEWS)}
            mains: dict[str, dict[str, Patch | None]] = {}
            for m in in_view:
                if bool(train.get(m.case, False)):
                    mains.setdefault(m.case, {})[m.view] = m.main_patch
            try:
                oracle = oracle_patch_auc(wide, labels, train, mains, pooling="modal", n_boot=bootstrap, seed=seed)
                row.update(
                    oracle_auc=oracle.auc_valid,
                    oracle_ci_low=oracle.ci_low,
                    oracle_ci_high=oracle.ci_high,
                    oracle_feature=f"{'-' if oracle.sign < 0 else ''}{oracle.feature}",
                )
            except ValueError as exc:
                logger.info("signal audit %s %s: no oracle ceiling (%s)", task, view, exc)
                row.update(oracle_auc=math.nan, oracle_ci_low=math.nan, oracle_ci_high=math.nan, oracle_feature="")
            columns = [c for c in floor_features.columns if view == ALL_VIEWS or c.startswith(f"{view}.")]
            try:
                floor = first_order_floor(floor_features[columns], labels, train, n_boot=0, seed=seed)
                row["floor_auc"] = floor.auc_valid
            except ValueError as exc:
                logger.info("signal audit %s %s: no floor (%s)", task, view, exc)
                row["floor_auc"] = math.nan
            row["fingerprint_auc_valid"] = auc_valid if view == ALL_VIEWS else math.nan
            row["fingerprint_auc_cv"] = auc_cv if view == ALL_VIEWS else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, str):
        return value or "–"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 10:
        return f"{int(value)}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def audit_markdown(table: pd.DataFrame) -> str:
    """``tables/signal_audit.md``: the table with its reading."""
    from radpersona.audit import MIN_CASE_SHARE, MIN_CNR, MIN_VOXELS
    from radpersona.markdown import markdown_table

    experiment = str(table["experiment"].iloc[0]) if len(table) else ""
    header = [
        "task",
        "view",
        "n",
        "voxels raw / pre / working",
        "|CNR| raw / pre / working",
        "survive raw / pre / working",
        "residual in / out (ratio)",
        "oracle AUC [95% CI]",
        "floor AUC",
        "fingerprint AUC valid / cv",
    ]
    rows = []
    for r in table.to_dict("records"):
        rows.append(
            [
                r["task"],
                r["view"],
                r["n_cases"],
                " / ".join(_fmt(r[f"{s}_voxels"], 0) for s in AUDIT_STAGES),
                " / ".join(_fmt(r[f"{s}_cnr"], 1) for s in AUDIT_STAGES),
                " / ".join(_fmt(r[f"{s}_survival"]) for s in AUDIT_STAGES),
                f"{_fmt(r['residual_in'], 3)} / {_fmt(r['residual_out'], 3)} ({_fmt(r['residual_ratio'])})",
                f"{_fmt(r['oracle_auc'])} [{_fmt(r['oracle_ci_low'])}, {_fmt(r['oracle_ci_high'])}]",
                _fmt(r["floor_auc"]),
                f"{_fmt(r['fingerprint_auc_valid'])} / {_fmt(r['fingerprint_auc_cv'])}",
            ]
        )
    reg = table["reg"].iloc[0] if len(table) else ""
    grid = table["grid"].iloc[0] if len(table) else ""
    return (
        f"# Signal audit: experiment `{experiment}` (branch {reg}, grid {grid})\n\n"
        "How much lesion signal survives each stage. Per task and view over the cases with the task's lesion in "
        "that view (`n`); `all`: per case its best view. Medians of lesion voxels (fraction >= 0.5) and of "
        "|CNR| = |mean(image - true healthy) over the lesion| / noise sd (noise estimated on the raw counterpart, "
        "carried through resampling and normalisation) after ingest (raw), preprocessing (pre) and on the "
        "working grid (registered, or pre for noreg). `survive`: share of the lesion cases with >= "
        f"{MIN_VOXELS} lesion voxels and |CNR| >= {MIN_CNR:g} (a task's lesion survives a stage at >= "
        f"{MIN_CASE_SHARE:.0%}). Residual: median mean |input - persona| inside the lesion and in the rest of the "
        "persona box. Oracle: the best single wide-table feature of the training positives' modal lesion patch, "
        "chosen on train, AUC on valid (the ceiling of patch radiomics). Floor: logistic regression on whole-volume "
        "first-order statistics of the working volumes, AUC on valid. Fingerprint: the experiment's AUC on valid "
        "and the mean over the CV folds (as in metrics.md).\n\n" + markdown_table(header, rows) + "\n"
    )


def _to_registered(
    layout: Layout, case: str, view: str, spacing: Sequence[float]
) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """Preprocessed-grid arrays of a case and view -> the registered grid (one ``reg_resample`` call)."""
    from radpersona.truth import reg_resample_stack

    registered, affine = Path(layout.registered(case, view)), Path(layout.affine(case, view))

    def carry(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        return reg_resample_stack(arrays, spacing, registered, affine, case=case, view=view)

    return carry


def signal_audit(
    *,
    results: str | Path,
    experiment: str,
    reg: str,
    grid: int,
    preprocess: Mapping[str, Any] | PreprocessSettings,
    box: Sequence[float],
    bootstrap: int,
    seed: int,
    views: Sequence[str] = VIEWS,
    tasks: Sequence[str] = TASKS,
) -> None:
    """Rule signal_audit: ``tables/signal_audit.csv`` and ``.md`` (see the module docstring).

    Reads through ``Layout(results)``: the cohort; per case and view the raw, preprocessed and working volumes,
    the truth lesion mask and (lesion cases) the truth healthy counterpart, the persona residual, and for
    ``reg == "reg"`` the registered volume and affine; the wide table of ``reg`` and ``grid``; the
    experiment's predictions per task.
    """
    from radpersona.features import read_wide
    from radpersona.truth import TASK_LESION_CODES, truth_array
    from radpersona.volume import read_volume

    layout = Layout(str(results))
    settings = PreprocessSettings.from_config(preprocess)
    cohort = pd.read_parquet(layout.cohort())
    cohort["case"] = cohort["case"].astype(str)
    measures: list[LesionMeasure] = []
    working: dict[str, dict[str, np.ndarray]] = {}
    for record in cohort.to_dict("records"):
        case = record["case"]
        working[case] = {}
        for view in views:
            image_w, _ = read_volume(layout.working(reg, case, view), case=case, view=view)
            working[case][view] = image_w
            codes_mask = truth_array(layout, case, view, "lesion")
            present = {
                task: TASK_LESION_CODES[task]
                for task in tasks
                if record.get(task) == 1 and np.isin(codes_mask, TASK_LESION_CODES[task]).any()
            }
            if not present:
                continue
            raw, _ = read_volume(layout.raw(case, view), case=case, view=view)
            pre, pre_spacing = read_volume(layout.pre(case, view), case=case, view=view)
            residual, _ = read_volume(layout.residual(reg, case, view), case=case, view=view)
            to_working = _to_registered(layout, case, view, pre_spacing) if reg == "reg" else None
            measures += measure_case_view(
                raw=raw,
                healthy_raw=truth_array(layout, case, view, "healthy").astype(np.float32),
                codes_mask=codes_mask,
                pre=pre,
                working=image_w,
                residual=residual,
                preprocess=settings,
                tasks=present,
                box=box,
                grid=int(grid),
                to_working=to_working,
                case=case,
                view=view,
            )
    wide, _ = read_wide(layout.wide(reg, grid))
    predictions = {task: pd.read_parquet(layout.predictions(experiment, task)) for task in tasks}
    table = audit_table(
        measures,
        cohort=cohort,
        wide=wide,
        working=working,
        predictions=predictions,
        views=views,
        tasks=tasks,
        bootstrap=bootstrap,
        seed=seed,
    )
    table["experiment"], table["reg"], table["grid"] = experiment, reg, int(grid)
    table = table.reindex(columns=list(AUDIT_COLUMNS))
    write_csv_atomic(table, layout.signal_audit())
    write_text_atomic(layout.signal_audit("md"), audit_markdown(table))
    logger.info("signal audit:\n%s", table.drop(columns=["oracle_feature"]).to_string(index=False))
