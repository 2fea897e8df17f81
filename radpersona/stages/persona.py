"""Stages of rules/persona.smk: train the persona DDPM, inpaint personas; the reconstruction study."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona.atomic import write_csv_atomic, write_text_atomic
from radpersona.errors import RadpersonaError
from radpersona.folds import (
    ALL_FOLD,
    EXTERNAL_MODEL,
    healthy_training_cases,
    persona_model_folds,
    persona_training_cases,
)
from radpersona.layout import Layout
from radpersona.parquet import write_parquet
from radpersona.persona.reconstruction.configs import ReconConfig, box_origins, model_checkpoint, resolve_config
from radpersona.settings import (
    BaselinePersonaSettings,
    PersonaModelSettings,
    PersonaSampleSettings,
    PreprocessSettings,
    ReconConfigOverrides,
)
from radpersona.stages import torch_threads
from radpersona.vocabulary import PersonaProtocol
from radpersona.volume import load_stack, write_volume

logger = logging.getLogger("radpersona")


def _working_stack(layout: Layout, reg: str, cases: Sequence[str], views: Sequence[str]) -> tuple[np.ndarray, list]:
    """The volumes a ``{reg}`` branch works on, ``(n, V, D, H, W)``, and their spacings."""
    return load_stack([[layout.working(reg, c, v) for v in views] for c in cases], cases, views)


def train_ddpm(
    *,
    results: str | Path,
    reg: str,
    checkpoint: str | Path,
    settings: Mapping[str, Any] | PersonaModelSettings,
    views: Sequence[str],
    threads: int,
    fold: str = ALL_FOLD,
) -> None:
    """Train the persona DDPM of the ``reg`` branch on the healthy training cases (:func:`healthy_training_cases`):
    all of them (``fold`` ``all``), or those outside cross-validation fold ``fold`` (cross-fitted personas).

    Args:
        results: the results folder (cohort table and volumes are read from it).
        reg: the branch (``reg``: registered volumes, ``noreg``: preprocessed ones).
        checkpoint: output file.
        settings: ``persona`` without ``sample`` and ``reconstruction`` (``PersonaModelSettings``).
        views: the source's views (channels of the model).
        threads: torch CPU threads.
        fold: ``all`` or a CV fold (``0``, ``1``, ...) whose cases the model must not see.
    """
    from radpersona.persona.train import train_ddpm as train

    torch_threads(threads)
    model_settings = PersonaModelSettings.from_config(settings)
    layout = Layout(str(results))
    healthy = persona_training_cases(pd.read_parquet(layout.cohort()), fold)
    if len(healthy) < 2:
        raise RadpersonaError(
            f"the persona DDPM of fold {fold!r} needs at least 2 healthy training cases (abn = 0)"
            f"{'' if fold == ALL_FOLD else f' outside fold {fold}'}, found {len(healthy)}"
        )
    stack, _ = _working_stack(layout, reg, healthy, views)
    logger.info("train_ddpm: fold %s, %d healthy training cases, volumes %s", fold, len(healthy), stack.shape)
    summary = train(stack, settings=model_settings, checkpoint=Path(checkpoint), views=views)
    logger.info("train_ddpm: %s", summary)


def persona(
    *,
    results: str | Path,
    reg: str,
    box: Sequence[float],
    sample: Mapping[str, Any] | PersonaSampleSettings,
    device: str,
    views: Sequence[str],
    threads: int,
    cross_fit: bool = True,
    data_range: float = 1.0,
    checkpoint: str | Path | None = None,
) -> None:
    """Inpaint a healthy persona for every case of the ``reg`` branch; write persona and residual volumes per
    view, and the membership table (which DDPM made each persona, and whether that DDPM trained on the case).

    Args:
        results: the results folder (cohort, volumes and the branch's DDPMs are read from it; personas and
            residuals are written to it).
        reg: the branch.
        box: ``persona.box``.
        sample: ``persona.sample`` (sampler, steps, batch size, seed).
        device: ``persona.device``.
        views: the source's views.
        threads: torch CPU threads.
        cross_fit: ``persona.cross_fit``: a training case's persona comes from the DDPM of its own CV fold
            (trained without it), a reported case's from the DDPM of all healthy training cases; ``False``:
            every persona from the latter (the paper's protocol).
        data_range: the intensity range of the volumes (``persona.intensity_range``), for SSIM.
        checkpoint: ``persona.checkpoint``: a DDPM trained elsewhere makes every persona (protocol
            ``external``; ``cross_fit`` is not read); refused unless its views, shape and box are this run's.

    Raises:
        InputDataError: the external checkpoint does not fit (names the file and the value).
    """
    from radpersona.persona.sample import check_external_model, derive_case_seed, sample_personas

    torch_threads(threads)
    sample_settings = PersonaSampleSettings.from_config(sample)
    layout = Layout(str(results))
    cohort = pd.read_parquet(layout.cohort())
    cases = cohort["case"].tolist()
    stack, spacings = _working_stack(layout, reg, cases, views)
    if checkpoint is not None:
        protocol = PersonaProtocol.EXTERNAL
        check_external_model(Path(checkpoint), views=views, shape=stack.shape[2:], box=box)
    else:
        protocol = PersonaProtocol.CROSS_FIT if cross_fit else PersonaProtocol.PAPER

    def model_path(fold: str) -> Path:
        return Path(checkpoint) if fold == EXTERNAL_MODEL and checkpoint is not None else Path(layout.ddpm(reg, fold))

    def trained_cases(fold: str) -> set[str]:  # an external model never saw this cohort
        return set() if fold == EXTERNAL_MODEL else set(persona_training_cases(cohort, fold))

    seeds = [derive_case_seed(sample_settings.seed, c) for c in cases]
    model_fold = persona_model_folds(cohort, protocol)
    personas = np.empty_like(stack)
    for fold in sorted(set(model_fold.values())):
        index = [n for n, case in enumerate(cases) if model_fold[case] == fold]
        logger.info("persona: DDPM %s makes %d personas", model_path(fold), len(index))
        personas[index] = sample_personas(
            stack[index],
            checkpoint=model_path(fold),
            sample=sample_settings,
            box=[float(b) for b in box],
            seeds=[seeds[n] for n in index],
            device=device,
        )
    trained_on = {fold: trained_cases(fold) for fold in set(model_fold.values())}
    membership = pd.DataFrame(
        {
            "case": cases,
            "split": cohort["split"].tolist(),
            "abn": cohort["abn"].tolist(),
            "model": [model_path(model_fold[c]).name for c in cases],
            "model_fold": [model_fold[c] for c in cases],
            "trained_on_case": [c in trained_on[model_fold[c]] for c in cases],
            "protocol": protocol.value,
        }
    )
    write_parquet(membership, layout.persona_membership(reg), metadata={"protocol": protocol.value})
    made = MadePersonas(cohort, stack, personas, model_fold, trained_on, protocol, seeds)
    _membership_table(layout, reg, made, box=box, sample=sample_settings, device=device, data_range=data_range)
    write_personas(layout, reg, cases, views, stack, personas, spacings, sample_settings, seeds)


def write_personas(
    layout: Layout,
    reg: str,
    cases: Sequence[str],
    views: Sequence[str],
    stack: np.ndarray,
    personas: np.ndarray,
    spacings: Sequence[Sequence[tuple[float, float, float]]],
    sample: PersonaSampleSettings,
    seeds: Sequence[int],
) -> None:
    """Write each case's persona and residual (input - persona) volume per view, tagged with sampler, steps and seed."""
    tag_base = {"sampler": sample.sampler.value, "steps": sample.steps}
    for n, case in enumerate(cases):
        for v, view in enumerate(views):
            tag = {**tag_base, "seed": seeds[n]}
            write_volume(layout.persona(reg, case, view), personas[n, v], spacings[n][v], description=tag)
            write_volume(
                layout.residual(reg, case, view), stack[n, v] - personas[n, v], spacings[n][v], description=tag
            )


@dataclass(frozen=True)
class MadePersonas:
    """The personas of one branch and where each came from.

    ``stack`` and ``personas`` are ``(cases, views, D, H, W)`` in ``cohort`` order; ``model_fold`` names, per
    case, the DDPM fold that made its persona; ``trained_on``, per fold, the cases that DDPM trained on (none
    for an external model); ``seeds`` the per-case sampling seeds."""

    cohort: pd.DataFrame
    stack: np.ndarray
    personas: np.ndarray
    model_fold: Mapping[str, str]
    trained_on: Mapping[str, set[str]]
    protocol: PersonaProtocol
    seeds: Sequence[int]


def _membership_table(
    layout: Layout,
    reg: str,
    made: MadePersonas,
    *,
    box: Sequence[float],
    sample: PersonaSampleSettings,
    device: str,
    data_range: float,
) -> None:
    """``tables/persona_membership_{reg}.csv`` and ``.md``: box SSIM and MSE of healthy training versus healthy
    valid cases' personas, for this run's protocol and, when cross-fitted, for the paper's protocol too (the
    healthy training cases inpainted once more by the DDPM of all healthy training cases, which saw them)."""
    from radpersona.persona.masks import box_slices
    from radpersona.persona.membership import case_scores, membership_markdown, membership_table
    from radpersona.persona.sample import sample_personas

    cohort, stack, personas, seeds = made.cohort, made.stack, made.personas, made.seeds
    model_fold, trained_on, protocol = made.model_fold, made.trained_on, made.protocol
    cases = cohort["case"].astype(str).tolist()
    split_of = dict(zip(cases, cohort["split"]))
    healthy = set(healthy_training_cases(cohort, "train")) | set(healthy_training_cases(cohort, "valid"))
    index = [n for n, case in enumerate(cases) if case in healthy]
    crop = box_slices(stack.shape[2:], [float(b) for b in box])

    def scored(name: str, idx: list[int], made: np.ndarray, trained: list[bool]) -> pd.DataFrame:
        frame = case_scores(stack[idx], made, crop, data_range)
        frame.insert(0, "case", [cases[n] for n in idx])
        frame.insert(1, "split", [split_of[cases[n]] for n in idx])
        frame.insert(2, "protocol", name)
        frame.insert(3, "trained_on_case", trained)
        return frame

    frames = [
        scored(protocol.value, index, personas[index], [cases[n] in trained_on[model_fold[cases[n]]] for n in index])
    ]
    if protocol == PersonaProtocol.CROSS_FIT:  # the paper's protocol for comparison: the all-cases DDPM on its cases
        all_trained = set(persona_training_cases(cohort, ALL_FOLD))
        train_idx = [n for n in index if split_of[cases[n]] == "train"]
        valid_idx = [n for n in index if split_of[cases[n]] != "train"]
        seen = sample_personas(
            stack[train_idx],
            checkpoint=Path(layout.ddpm(reg)),
            sample=sample,
            box=[float(b) for b in box],
            seeds=[seeds[n] for n in train_idx],
            device=device,
        )
        frames.append(
            scored(PersonaProtocol.PAPER.value, train_idx, seen, [cases[n] in all_trained for n in train_idx])
        )
        frames.append(scored(PersonaProtocol.PAPER.value, valid_idx, personas[valid_idx], [False] * len(valid_idx)))
    scores = pd.concat(frames, ignore_index=True)
    table = membership_table(scores)
    write_csv_atomic(table, layout.table(f"persona_membership_{reg}"))
    write_text_atomic(layout.table(f"persona_membership_{reg}", "md"), membership_markdown(table, reg))
    logger.info("persona membership:\n%s", table.to_string(index=False))


# ---------------------------------------------------------------------------------- reconstruction study
def _recon_config(
    name: str, overrides: Mapping[str, Any], box: Sequence[float], default_reg: str, source_views: Sequence[str]
) -> ReconConfig:
    over = ReconConfigOverrides.from_config(overrides, f"persona.reconstruction.configs.{name}")
    return resolve_config(name, over, box, default_reg, source_views)


def train_reconstruction_model(
    *,
    results: str | Path,
    checkpoint: str | Path,
    config_name: str,
    model: str,
    overrides: Mapping[str, Any],
    persona: Mapping[str, Any],
    section: Mapping[str, Any] | None,
    default_reg: str,
    source_views: Sequence[str],
    threads: int,
) -> None:
    """Train one model of one configuration on the healthy training cases (abn = 0, split train).

    Args:
        results: the results folder (cohort table and the configuration's volumes are read from it).
        checkpoint: output file.
        config_name, overrides: the configuration (``persona.reconstruction.configs.{config_name}``).
        model: ``ddpm``, ``gan`` or ``vit_ae``.
        persona: for the DDPM its model settings (``persona`` without ``sample`` and ``reconstruction``);
            for a baseline the persona keys it reads (``BASELINE_PERSONA_KEYS``).
        section: the baseline's section (``persona.reconstruction.{model}``); None for the DDPM.
        default_reg: the first of ``registration.variants``.
        source_views: the source's views.
        threads: torch CPU threads.
    """
    from radpersona.persona.baselines import BASELINE_SETTINGS
    from radpersona.persona.reconstruction.study import train_config_model

    torch_threads(threads)
    settings: PersonaModelSettings | BaselinePersonaSettings
    if section is None:
        settings, baseline = PersonaModelSettings.from_config(persona), None
    else:
        settings = BaselinePersonaSettings.from_config(persona)
        baseline = BASELINE_SETTINGS[model].from_config(section)
    cfg = _recon_config(config_name, overrides, settings.box, default_reg, source_views)
    layout = Layout(str(results))
    healthy = persona_training_cases(pd.read_parquet(layout.cohort()), ALL_FOLD)
    if len(healthy) < 2:
        raise RadpersonaError(
            f"reconstruction config {config_name}: needs at least 2 healthy training cases, found {len(healthy)}"
        )
    stack, _ = _working_stack(layout, cfg.reg, healthy, cfg.views)
    logger.info(
        "train %s for reconstruction config %s: %d healthy training cases, volumes %s",
        model,
        config_name,
        len(healthy),
        stack.shape,
    )
    summary = train_config_model(cfg, stack, persona=settings, section=baseline, checkpoint=Path(checkpoint))
    logger.info("train %s (%s): %s", model, config_name, summary)


def evaluate_reconstruction_config(
    *,
    results: str | Path,
    config_name: str,
    models: Sequence[str],
    table: str | Path,
    figure: str | Path,
    overrides: Mapping[str, Any],
    persona: Mapping[str, Any],
    sample: Mapping[str, Any],
    location_seed: int,
    preprocess: Mapping[str, Any],
    synthetic: bool,
    default_reg: str,
    source_views: Sequence[str],
    threads: int,
) -> None:
    """Evaluate one configuration: held-out healthy reconstruction and counterfactual fidelity; figure.

    Args:
        results: the results folder: the cohort, the models' checkpoints, the configuration's volumes of
            the valid cases and, for a synthetic source, the lesion cases' truth, raw and preprocessed
            volumes (and for the reg branch their registration QC, affines and the references).
        config_name, overrides: the configuration (``persona.reconstruction.configs.{config_name}``).
        models: ``persona.reconstruction.models``.
        table, figure: outputs (the configuration's CSV and PNG).
        persona: the persona keys read here (``BASELINE_PERSONA_KEYS``: box, intensity range, device).
        sample: ``persona.sample``.
        location_seed: ``persona.reconstruction.location_seed``.
        preprocess: the ``preprocess`` section (the truth is brought onto the grid with it).
        synthetic: the source is synthetic (it has the truth: counterfactual fidelity is scored).
        default_reg: the first of ``registration.variants``.
        source_views: the source's views.
        threads: torch CPU threads.
    """
    from radpersona.persona.reconstruction.report import plot_config
    from radpersona.persona.reconstruction.study import STUDY_COUNTERFACTUAL, evaluate_config
    from radpersona.persona.reconstruction.truth_grid import lesion_truth

    torch_threads(threads)
    persona_settings = BaselinePersonaSettings.from_config(persona)
    sample_settings = PersonaSampleSettings.from_config(sample)
    preprocess_settings = PreprocessSettings.from_config(preprocess)
    cfg = _recon_config(config_name, overrides, persona_settings.box, default_reg, source_views)
    layout = Layout(str(results))
    cohort = pd.read_parquet(layout.cohort())
    valid = cohort[cohort["split"] == "valid"]
    healthy_cases = healthy_training_cases(cohort, "valid")
    if not healthy_cases:
        raise RadpersonaError(
            f"reconstruction config {config_name}: the valid split has no healthy case (abn = 0, or every known "
            "label 0) to evaluate on"
        )
    healthy, _ = _working_stack(layout, cfg.reg, healthy_cases, cfg.views)
    lesion_data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    lesion_cases = valid[valid["abn"] == 1]["case"].tolist() if synthetic else []
    if lesion_cases:
        originals, _ = _working_stack(layout, cfg.reg, lesion_cases, cfg.views)
        for n, case in enumerate(lesion_cases):
            truth, occupancy = lesion_truth(layout, cfg, case, preprocess_settings)
            lesion_data[case] = (originals[n], truth, occupancy)
    checkpoints = {m: Path(model_checkpoint(layout, cfg, m, persona_settings.box)) for m in models}
    scores, recons = evaluate_config(
        cfg,
        models=checkpoints,
        healthy=healthy,
        healthy_cases=healthy_cases,
        lesion_data=lesion_data,
        persona=persona_settings,
        sample=sample_settings,
        location_seed=location_seed,
    )
    write_csv_atomic(scores, Path(table))
    for (study, region, model), grp in scores.groupby(["study", "region", "model"], sort=False):
        logger.info(
            "reconstruction %s %s %s %s: n %d, MSE %.5f, SSIM %.3f%s",
            config_name,
            study,
            region,
            model,
            len(grp),
            grp["mse"].mean(),
            grp["ssim"].mean(),
            f", contrast removed {grp['contrast_removed'].mean():.3f}"
            if study == STUDY_COUNTERFACTUAL and region == "lesion"
            else "",
        )
    # figure: the first counterfactual case (it has a truth), else the first held-out healthy case
    cf = scores[scores["study"] == STUDY_COUNTERFACTUAL]["case"]
    case = str(cf.iloc[0]) if len(cf) else healthy_cases[0]
    if case in lesion_data:
        original, truth_volume = lesion_data[case][0], lesion_data[case][1]
    else:
        original, truth_volume = healthy[healthy_cases.index(case)], None
    origin = box_origins(cfg, original.shape[1:], [case], int(location_seed))[0]
    plot_config(
        cfg,
        case,
        original,
        {m: r[case] for m, r in recons.items()},
        truth_volume,
        origin,
        Path(figure),
        persona_settings.intensity_range,
    )


def evaluate_reconstruction(
    *, parts: Sequence[str | Path], table: str | Path, summary: str | Path, markdown: str | Path
) -> None:
    """Concatenate the configurations' tables; write the summary with the paired Wilcoxon tests (CSV, Markdown)."""
    from radpersona.persona.reconstruction.report import summarise, summary_markdown

    scores = pd.concat([pd.read_csv(p, dtype={"case": str}) for p in parts], ignore_index=True)
    write_csv_atomic(scores, Path(table))
    stats = summarise(scores)
    write_csv_atomic(stats, Path(summary))
    write_text_atomic(Path(markdown), summary_markdown(stats))
    logger.info("reconstruction summary:\n%s", stats.to_string(index=False))
