"""One configuration of the reconstruction study: train its models, inpaint, score (see the package docstring).

Inputs, in order: the healthy valid cases (``heldout_healthy``), the lesion cases (``counterfactual``:
scored against their true healthy counterparts) and the lesion cases' true healthy counterparts
(``heldout_counterpart``: held-out healthy volumes too, never trained on); every model inpaints every
input with the same per-case box origins (:func:`~radpersona.persona.reconstruction.configs.box_origins`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona.persona.masks import box_slices
from radpersona.persona.reconstruction.configs import DDPM, ReconConfig, box_origins
from radpersona.persona.reconstruction.metrics import counterfactual_metrics, region_metrics
from radpersona.settings import (
    BaselinePersonaSettings,
    GANSettings,
    PersonaModelSettings,
    PersonaSampleSettings,
    ViTAESettings,
)

__all__ = [
    "STUDY_HEALTHY",
    "STUDY_COUNTERPART",
    "STUDY_COUNTERFACTUAL",
    "RESULT_COLUMNS",
    "LESION_OCCUPANCY",
    "train_config_model",
    "reconstruct",
    "evaluate_config",
]

logger = logging.getLogger("radpersona")

STUDY_HEALTHY = "heldout_healthy"
STUDY_COUNTERPART = "heldout_counterpart"
STUDY_COUNTERFACTUAL = "counterfactual"
RESULT_COLUMNS = [
    "model",
    "config",
    "case",
    "region",
    "mse",
    "ssim",
    "study",
    "contrast_removed",
    "n_voxels",
    "views",
    "reg",
    "box",
    "box_origin",
    "seed",
]
"""Columns of a configuration's table (``tables/reconstruction/{rconfig}.csv``), in order."""

LESION_OCCUPANCY = 0.5
"""A voxel is lesion when its resampled lesion occupancy is at least this."""


def train_config_model(
    cfg: ReconConfig,
    volumes: np.ndarray,
    *,
    persona: PersonaModelSettings | BaselinePersonaSettings,
    section: GANSettings | ViTAESettings | None,
    checkpoint: Path,
) -> dict[str, Any]:
    """Train one model of a configuration on healthy volumes (its views), with the configuration's box.

    Args:
        cfg: the configuration.
        volumes: float32 (N, C, D, H, W), the configuration's views of the healthy training cases.
        persona: the DDPM's model settings (``section`` None), or the persona keys a baseline reads.
        section: the baseline's section (``persona.reconstruction.gan`` or ``.vit_ae``); None for the DDPM.
        checkpoint: output file.

    Returns:
        The training summary.
    """
    if section is None:
        from radpersona.persona.train import train_ddpm

        if not isinstance(persona, PersonaModelSettings):
            raise TypeError("the DDPM of a reconstruction configuration needs the persona model settings")
        return train_ddpm(volumes, settings=persona.replace(box=cfg.box), checkpoint=Path(checkpoint))
    from radpersona.persona.baselines import train_baseline

    return train_baseline(volumes, persona=persona.replace(box=cfg.box), section=section, checkpoint=Path(checkpoint))


# --------------------------------------------------------------------------------- reconstruction
def reconstruct(
    model: str,
    checkpoint: Path,
    volumes: np.ndarray,
    cases: Sequence[str],
    origins: Sequence[tuple[int, int, int] | None],
    cfg: ReconConfig,
    sample: PersonaSampleSettings,
    device: str,
) -> tuple[np.ndarray, list[int]]:
    """Inpaint the box of every case with one model; returns the reconstructions and per-case seeds.

    DDPM: ``sample_personas`` with ``persona.sample`` (sampler, steps, batch size) and the pipeline's
    per-case seeds ``derive_case_seed(persona.sample.seed, case)``; cases sharing a box origin are
    sampled together (the result does not depend on the batch). Baselines are deterministic (batches
    of ``persona.sample.batch_size``); their recorded seed is their training seed.
    """
    if model == DDPM:
        from radpersona.persona.sample import derive_case_seed, sample_personas

        seeds = [derive_case_seed(int(sample.seed), c) for c in cases]
        out = np.empty_like(volumes)
        groups: dict[Any, list[int]] = {}
        for i, o in enumerate(origins):
            groups.setdefault(o, []).append(i)
        for origin, idx in groups.items():
            out[idx] = sample_personas(
                volumes[idx],
                checkpoint=Path(checkpoint),
                sample=sample,
                box=list(cfg.box),
                seeds=[seeds[i] for i in idx],
                device=device,
                origin=origin,
            )
        return out, seeds
    from radpersona.persona.baselines import inpaint_baseline, load_baseline

    _, meta = load_baseline(Path(checkpoint), "cpu")
    out = inpaint_baseline(
        volumes,
        checkpoint=Path(checkpoint),
        box=list(cfg.box),
        origins=list(origins),
        batch_size=int(sample.batch_size),
        device=device,
    )
    return out, [int(meta["seed"])] * len(cases)


def _origin_text(origin: tuple[int, int, int] | None, shape: Sequence[int], box: Sequence[float]) -> str:
    sl = box_slices(shape, box, origin=origin)
    return ",".join(str(s.start) for s in sl)


def evaluate_config(
    cfg: ReconConfig,
    *,
    models: Mapping[str, Path],
    healthy: np.ndarray,
    healthy_cases: Sequence[str],
    lesion_data: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None,
    persona: BaselinePersonaSettings | PersonaModelSettings,
    sample: PersonaSampleSettings,
    location_seed: int,
) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Run every model of one configuration on the held-out healthy and the lesion cases.

    Args:
        cfg: the configuration.
        models: model name -> checkpoint.
        healthy: (N, C, D, H, W) held-out healthy cases (the configuration's views).
        healthy_cases: their ids.
        lesion_data: case -> (original, true healthy, lesion occupancy), each (C, D, H, W) on the model
            grid; ``None`` or empty for a source without truth.
        persona: the persona keys read here: ``intensity_range`` (SSIM's data range) and ``device``.
        sample: ``persona.sample`` (the DDPM's reverse process; the batch size of every model).
        location_seed: ``persona.reconstruction.location_seed`` (random box origins).

    Returns:
        The long result table (``RESULT_COLUMNS``) and, per model, the reconstructions of every case
        (case -> (C, D, H, W)) for the figure.
    """
    lo, hi = (float(v) for v in persona.intensity_range)
    data_range = hi - lo
    seed = int(location_seed)
    lesion_data = dict(lesion_data or {})
    lesion_cases = list(lesion_data)
    # inputs, in order: the healthy valid cases, the lesion cases, and the lesion cases' true healthy
    # counterparts (held-out healthy volumes too, never trained on); one study per input
    inputs = [healthy[i] for i in range(len(healthy_cases))]
    inputs += [lesion_data[c][0] for c in lesion_cases] + [lesion_data[c][1] for c in lesion_cases]
    cases = list(healthy_cases) + lesion_cases + lesion_cases
    studies = [STUDY_HEALTHY] * len(healthy_cases) + [STUDY_COUNTERFACTUAL] * len(lesion_cases)
    studies += [STUDY_COUNTERPART] * len(lesion_cases)
    volumes = np.stack(inputs).astype(np.float32)
    shape = tuple(int(s) for s in volumes.shape[2:])
    origins = box_origins(cfg, shape, cases, seed)
    rows: list[dict[str, Any]] = []
    recons: dict[str, dict[str, np.ndarray]] = {}
    for model, checkpoint in models.items():
        recon, seeds = reconstruct(model, checkpoint, volumes, cases, origins, cfg, sample, persona.device)
        # the figure shows what the pipeline makes: personas of the valid cases as they are
        recons[model] = {c: recon[i] for i, (c, st) in enumerate(zip(cases, studies)) if st != STUDY_COUNTERPART}
        for i, (case, study) in enumerate(zip(cases, studies)):
            base = {
                "model": model,
                "config": cfg.name,
                "case": case,
                "views": cfg.view_label,
                "reg": cfg.reg,
                "box": "x".join(f"{b:g}" for b in cfg.box),
                "box_origin": _origin_text(origins[i], shape, cfg.box),
                "seed": int(seeds[i]),
            }
            box = box_slices(shape, cfg.box, origin=origins[i])
            if study != STUDY_COUNTERFACTUAL:
                for region, m in region_metrics(volumes[i], recon[i], box, data_range).items():
                    rows.append({**base, "region": region, "study": study, "contrast_removed": float("nan"), **m})
                continue
            original, truth, occupancy = lesion_data[case]
            found = counterfactual_metrics(original, truth, occupancy >= LESION_OCCUPANCY, recon[i], box, data_range)
            for region, m in (found or {}).items():
                rows.append(
                    {
                        **base,
                        "region": region,
                        "study": study,
                        "contrast_removed": m.pop("contrast_removed", float("nan")),
                        **m,
                    }
                )
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    return table, recons
