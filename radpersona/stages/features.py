"""Stages of rules/features.smk: patch-wise radiomics per case, then the wide table."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radpersona.parquet import write_parquet
from radpersona.stages import torch_threads
from radpersona.vocabulary import VIEWS
from radpersona.volume import read_volume

logger = logging.getLogger("radpersona")


def extract_features(
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
    from radpersona.features import case_features, resolve_bin_width
    from radpersona.persona.masks import box_slices

    torch_threads(threads)
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


def assemble_features(parts: Sequence[str], out: str | Path, settings: Mapping[str, Any]) -> None:
    """Per-case long tables -> the wide table."""
    from radpersona.features import assemble_wide

    wide = assemble_wide(parts, out, settings=settings)
    logger.info("wide table: %d cases x %d features", *wide.shape)
