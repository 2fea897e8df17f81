"""Stage entry points that the Snakemake rules call (through ``workflow_scripts/``).

Each ``stage_*`` function takes plain paths and settings, so it can be called and tested without
Snakemake; :func:`snakemake_entry` adapts a rule's ``snakemake`` object to it, sends the log to the
rule's log file and turns a user error into a one-paragraph message and a non-zero exit.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import VIEWS
from .atomic import write_csv_atomic
from .errors import RadpersonaError
from .parquet import write_parquet
from .progress import configure_logging
from .volume import read_volume, write_volume

logger = logging.getLogger("radpersona")


# --------------------------------------------------------------------------------------- helpers
def volume_dir(results: str | Path, reg: str) -> Path:
    """Folder of the volumes a ``{reg}`` branch works on: ``reg/`` or, for noreg, ``pre/``."""
    return Path(results) / "volumes" / ("reg" if reg == "reg" else "pre")


def load_stack(
    folder: str | Path, cases: Sequence[str], views: Sequence[str] = VIEWS
) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """Load (n, V, D, H, W) float32 volumes of ``cases`` from ``folder/{case}_{view}.nii.gz``."""
    arrays, spacings = [], []
    for case in cases:
        per_view = []
        for view in views:
            arr, spacing = read_volume(Path(folder) / f"{case}_{view}.nii.gz", case=case, view=view)
            per_view.append(arr)
        spacings.append(spacing)
        arrays.append(np.stack(per_view))
    return np.stack(arrays).astype(np.float32), spacings


def _torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(n)))


# ---------------------------------------------------------------------------------------- stages
def stage_synthesize(settings: Mapping[str, Any], mrnet_root: str | Path, truth_root: str | Path) -> None:
    """Generate the synthetic cohort in the MRNet layout plus its truth folder."""
    from .synthetic import generate_cohort

    start = time.perf_counter()
    generate_cohort(
        Path(mrnet_root),
        Path(truth_root),
        n_train=settings["n_train"],
        n_valid=settings["n_valid"],
        seed=settings["seed"],
        difficulty=settings["difficulty"],
        prevalence=settings["prevalence"],
        slices=tuple(settings["slices"]),
        matrix=settings["matrix"],
    )
    logger.info(
        "synthesize: %d cases in %.1f s (seed %d)",
        settings["n_train"] + settings["n_valid"],
        time.perf_counter() - start,
        settings["seed"],
    )


def stage_preprocess(
    case: str, raw: Sequence[str], out: Sequence[str], settings: Mapping[str, Any], views: Sequence[str] = VIEWS
) -> None:
    """Resize and normalise the views of one case."""
    from .preprocess import preprocess_volume

    for view, src, dst in zip(views, raw, out, strict=True):
        preprocess_volume(
            src,
            dst,
            shape=settings["shape"],
            interpolation=settings["interpolation"],
            normalisation=settings["normalisation"],
            percentiles=settings["percentiles"],
            case=case,
            view=view,
        )


def stage_train_ddpm(
    cohort_path: str | Path,
    volumes: str | Path,
    checkpoint: str | Path,
    settings: Mapping[str, Any],
    threads: int,
    views: Sequence[str] = VIEWS,
) -> None:
    """Train the persona DDPM on healthy training cases (abn = 0, split = train)."""
    from .persona.train import train_ddpm

    _torch_threads(threads)
    cohort = pd.read_parquet(cohort_path)
    healthy = cohort[(cohort["split"] == "train") & (cohort["abn"] == 0)]["case"].tolist()
    if len(healthy) < 2:
        raise RadpersonaError(
            f"the persona DDPM needs at least 2 healthy training cases (abn = 0), found {len(healthy)}"
        )
    stack, _ = load_stack(volumes, healthy, views)
    logger.info("train_ddpm: %d healthy training cases, volumes %s", len(healthy), stack.shape)
    summary = train_ddpm(stack, settings=settings, checkpoint=Path(checkpoint), device=settings["device"])
    logger.info("train_ddpm: %s", summary)


def stage_persona(
    cohort_path: str | Path,
    volumes: str | Path,
    checkpoint: str | Path,
    persona_dir: str | Path,
    residual_dir: str | Path,
    settings: Mapping[str, Any],
    threads: int,
    views: Sequence[str] = VIEWS,
) -> None:
    """Inpaint a healthy persona for every case; write persona and residual volumes per view."""
    from .persona.sample import derive_case_seed, sample_personas

    _torch_threads(threads)
    cases = pd.read_parquet(cohort_path)["case"].tolist()
    stack, spacings = load_stack(volumes, cases, views)
    sample = settings["sample"]
    seeds = [derive_case_seed(sample["seed"], c) for c in cases]
    personas = sample_personas(
        stack,
        checkpoint=Path(checkpoint),
        box=settings["box"],
        sampler=sample["sampler"],
        steps=sample["steps"],
        seeds=seeds,
        batch_size=sample["batch_size"],
        device=settings["device"],
    )
    for n, case in enumerate(cases):
        for v, view in enumerate(views):
            tag = {"sampler": sample["sampler"], "steps": sample["steps"], "seed": seeds[n]}
            write_volume(Path(persona_dir) / f"{case}_{view}.nii.gz", personas[n, v], spacings[n], description=tag)
            write_volume(
                Path(residual_dir) / f"{case}_{view}.nii.gz", stack[n, v] - personas[n, v], spacings[n], description=tag
            )


def stage_extract_features(
    case: str,
    volumes: str | Path,
    persona_dir: str | Path,
    residual_dir: str | Path,
    out: str | Path,
    grid: int,
    radiomics: Mapping[str, Any],
    box: Sequence[float],
    normalisation: str,
    threads: int = 1,
    views: Sequence[str] = VIEWS,
) -> None:
    """Patch-wise features of one case (long table)."""
    from .features import case_features, resolve_bin_width
    from .persona.masks import box_slices

    _torch_threads(threads)
    bin_width = resolve_bin_width(radiomics["bin_width"], normalisation)

    folders = {"original": Path(volumes), "persona": Path(persona_dir), "residual": Path(residual_dir)}
    data: dict[str, dict[str, np.ndarray]] = {}
    spacing: dict[str, tuple[float, float, float]] = {}
    for view in views:
        data[view] = {}
        for image in radiomics["images"]:
            arr, sp = read_volume(folders[image] / f"{case}_{view}.nii.gz", case=case, view=view)
            data[view][image] = arr
            spacing[view] = sp
    shape = next(iter(data[views[0]].values())).shape
    long = case_features(
        case,
        data,
        spacing,
        box=box_slices(shape, box),
        grid=grid,
        families=radiomics["families"],
        bin_width=bin_width,
        voxel_array_shift=radiomics["voxel_array_shift"],
        device=radiomics["device"],
    )
    write_parquet(
        long, out, metadata={"grid": grid, "radiomics": dict(radiomics), "bin_width": bin_width, "box": list(box)}
    )
    bad = long[long["status"] != "ok"]
    if len(bad):
        logger.warning(
            "case %s: %d feature values not computed (%s)", case, len(bad), bad["status"].value_counts().to_dict()
        )


def stage_assemble_features(parts: Sequence[str], out: str | Path, settings: Mapping[str, Any]) -> None:
    """Per-case long tables -> the wide table."""
    from .features import assemble_wide

    wide = assemble_wide(parts, out, settings=settings)
    logger.info("wide table: %d cases x %d features", *wide.shape)


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


def stage_train_fingerprint(
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
    from .features import read_wide
    from .fingerprint import fit_fingerprint, select_columns

    _torch_threads(threads)
    cohort = pd.read_parquet(cohort_path)
    wide, _ = read_wide(wide_path)
    columns = select_columns(list(wide.columns), settings["representation"], settings.get("families"))
    train, _ = _task_data(cohort, task, fold)
    X_train = wide.loc[train["case"], columns].to_numpy(np.float64)
    (X_train,) = _impute_training_means(X_train)
    images, _ = load_stack(volumes, train["case"].tolist(), views)
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
        settings=settings,
        seed=settings["seed"],
        device=settings["device"],
        log_label=f"{task} fold {fold}",
    )
    model.save(Path(out))


def stage_predict(
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
    from .features import read_wide
    from .fingerprint import TrainedFingerprint, fingerprint_table, population_table, youden_threshold

    _torch_threads(threads)
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
        images, _ = load_stack(volumes, reported["case"].tolist(), views)
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


def stage_localisation(
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
    from .localisation import localisation_table

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


def stage_metrics(
    prediction_paths: Sequence[str], out_csv: str | Path, out_md: str | Path, evaluation: Mapping[str, Any]
) -> None:
    """Metrics of every prediction table (Acc, Sen, Spe, AUC per task, fold and split)."""
    from .evaluation import metrics_table, summary_table

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


# ------------------------------------------------------------------------------ snakemake adapter
def snakemake_entry(smk: Any, stage: Callable[..., None], **kwargs: Any) -> None:
    """Run ``stage(**kwargs)`` inside a rule: log to the rule's log file, clear errors, exit 1 on failure."""
    log_path = Path(smk.log[0]) if len(smk.log) else None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_path, "w", buffering=1, encoding="utf-8")
    configure_logging()
    start = time.perf_counter()
    try:
        stage(**kwargs)
    except RadpersonaError as exc:
        logger.error("%s: %s", smk.rule, exc)
        print(f"radpersona error in rule {smk.rule}: {exc}", file=sys.__stderr__)
        sys.exit(1)
    logger.info("rule %s done in %.1f s", smk.rule, time.perf_counter() - start)


__all__ = [name for name in globals() if name.startswith("stage_")] + ["snakemake_entry", "load_stack", "volume_dir"]
