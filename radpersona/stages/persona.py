"""Stages of rules/persona.smk: train the persona DDPM, inpaint personas; the reconstruction study."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from radpersona.errors import RadpersonaError
from radpersona.persona.reconstruction import stage_evaluate_reconstruction_config as evaluate_reconstruction_config  # noqa: F401
from radpersona.persona.reconstruction import stage_reconstruction_tables as evaluate_reconstruction  # noqa: F401
from radpersona.persona.reconstruction import stage_train_reconstruction_model as train_reconstruction_model  # noqa: F401
from radpersona.stages import torch_threads
from radpersona.vocabulary import VIEWS
from radpersona.volume import load_stack, write_volume

logger = logging.getLogger("radpersona")


def train_ddpm(
    cohort_path: str | Path,
    volumes: str | Path,
    checkpoint: str | Path,
    settings: Mapping[str, Any],
    threads: int,
    views: Sequence[str] = VIEWS,
) -> None:
    """Train the persona DDPM on healthy training cases (abn = 0, split = train)."""
    from radpersona.persona.train import train_ddpm

    torch_threads(threads)
    cohort = pd.read_parquet(cohort_path)
    healthy = cohort[(cohort["split"] == "train") & (cohort["abn"] == 0)]["case"].tolist()
    if len(healthy) < 2:
        raise RadpersonaError(
            f"the persona DDPM needs at least 2 healthy training cases (abn = 0), found {len(healthy)}"
        )
    stack, _ = load_stack([[Path(volumes) / f"{c}_{v}.nii.gz" for v in views] for c in healthy], healthy, views)
    logger.info("train_ddpm: %d healthy training cases, volumes %s", len(healthy), stack.shape)
    summary = train_ddpm(stack, settings=settings, checkpoint=Path(checkpoint), device=settings["device"])
    logger.info("train_ddpm: %s", summary)


def persona(
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
    from radpersona.persona.sample import derive_case_seed, sample_personas

    torch_threads(threads)
    cases = pd.read_parquet(cohort_path)["case"].tolist()
    stack, spacings = load_stack([[Path(volumes) / f"{c}_{v}.nii.gz" for v in views] for c in cases], cases, views)
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
            write_volume(Path(persona_dir) / f"{case}_{view}.nii.gz", personas[n, v], spacings[n][-1], description=tag)
            write_volume(
                Path(residual_dir) / f"{case}_{view}.nii.gz",
                stack[n, v] - personas[n, v],
                spacings[n][-1],
                description=tag,
            )
