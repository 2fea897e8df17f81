"""Stages of rules/features.smk: patch-wise radiomics per case, then the wide table."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radpersona.layout import Layout
from radpersona.parquet import write_parquet
from radpersona.settings import RadiomicsSettings
from radpersona.stages import torch_threads
from radpersona.vocabulary import VIEWS
from radpersona.volume import read_volume

logger = logging.getLogger("radpersona")


def extract_features(
    *,
    results: str | Path,
    reg: str,
    grid: int,
    case: str,
    out: str | Path,
    radiomics: Mapping[str, Any] | RadiomicsSettings,
    box: Sequence[float],
    normalisation: str,
    threads: int = 1,
    views: Sequence[str] = VIEWS,
) -> None:
    """Patch-wise features of one case (long table) of the ``{reg}`` branch on the ``grid`` patch grid.

    Reads ``Layout(results).image(image, reg, case, view)`` for every image of ``radiomics.images`` and
    every view; writes the long table with the settings in its metadata.

    Args:
        radiomics: the ``radiomics`` section.
        box: ``persona.box`` (the patch grid divides it).
        normalisation: ``preprocess.normalisation`` (chooses ``bin_width: auto``).
    """
    from radpersona.features import case_features, resolve_bin_width
    from radpersona.persona.masks import box_slices

    settings = RadiomicsSettings.from_config(radiomics)
    layout = Layout(str(results))
    torch_threads(threads)
    bin_width = resolve_bin_width(settings.bin_width, normalisation)

    data: dict[str, dict[str, np.ndarray]] = {}
    spacing: dict[str, tuple[float, float, float]] = {}
    for view in views:
        data[view] = {}
        for image in settings.images:
            arr, sp = read_volume(layout.image(image, reg, case, view), case=case, view=view)
            data[view][image] = arr
            spacing[view] = sp
    shape = next(iter(data[views[0]].values())).shape
    long = case_features(
        case,
        data,
        spacing,
        box=box_slices(shape, box),
        grid=grid,
        families=settings.families,
        bin_width=bin_width,
        voxel_array_shift=settings.voxel_array_shift,
        device=settings.device,
    )
    write_parquet(
        long,
        out,
        metadata={"grid": grid, "radiomics": settings.to_config(), "bin_width": bin_width, "box": list(box)},
    )
    bad = long[long["status"] != "ok"]
    if len(bad):
        logger.warning(
            "case %s: %d feature values not computed (%s)", case, len(bad), bad["status"].value_counts().to_dict()
        )


def assemble_features(
    *,
    parts: Sequence[str | Path],
    out: str | Path,
    radiomics: Mapping[str, Any] | RadiomicsSettings,
    grid: int,
    box: Sequence[float],
    normalisation: str,
) -> None:
    """Per-case long tables -> the wide table; its metadata carries the radiomics settings with the
    ``grid``, ``box`` and ``normalisation`` they were extracted with, and their hash."""
    from radpersona.features import assemble_wide

    settings = RadiomicsSettings.from_config(radiomics)
    provenance = {**settings.to_config(), "grid": int(grid), "box": list(box), "normalisation": normalisation}
    wide = assemble_wide(parts, out, settings=provenance)
    logger.info("wide table: %d cases x %d features", *wide.shape)
