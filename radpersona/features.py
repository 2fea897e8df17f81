"""Patch-wise radiomic features of the persona box, into the long and wide Parquet tables.

For each case and view the ROI sampling domain (``persona.box``) is split into an n x n x n grid of
patches (i along slices, j along rows, k along columns; edges from ``numpy.linspace``). For each image
type (original, persona, residual = original - persona) and patch:

- intensity and texture families over every voxel of the patch;
- the shape family over the patch's tissue mask: voxels above the Otsu threshold of the whole
  volume (for the residual, |residual| above the Otsu threshold of |residual|);
- three location features ``i``, ``j``, ``k`` (family ``location``).

Long table: one row per value with ``status`` (``ok`` or why the value is missing), never a silent
NaN. Wide table: one row per case, columns ``{view}.{image}.p{i}{j}{k}.{family}.{feature}`` in the
order of the sorted long keys; the Parquet metadata carries the settings and their hash.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona.parquet import read_parquet_metadata, write_parquet
from radpersona.settings import settings_hash
from radpersona.vocabulary import LOCATION_FAMILY

logger = logging.getLogger("radpersona")

LONG_COLUMNS = ["case", "view", "image", "i", "j", "k", "family", "feature", "value", "status"]


def patch_edges(start: int, stop: int, n: int) -> list[tuple[int, int]]:
    """Split [start, stop) into n contiguous, nearly equal, non-empty intervals."""
    if stop - start < n:
        raise ValueError(f"cannot split {stop - start} voxels into {n} patches")
    edges = np.linspace(start, stop, n + 1).round().astype(int)
    return [(int(edges[a]), int(edges[a + 1])) for a in range(n)]


def patch_grid(
    box: tuple[slice, slice, slice], n: int
) -> list[tuple[tuple[int, int, int], tuple[slice, slice, slice]]]:
    """The n^3 patches of ``box`` as ((i, j, k), slices), in i, j, k order."""
    axes = [patch_edges(s.start, s.stop, n) for s in box]
    return [
        ((i, j, k), (slice(*axes[0][i]), slice(*axes[1][j]), slice(*axes[2][k])))
        for i in range(n)
        for j in range(n)
        for k in range(n)
    ]


def tissue_threshold(volume: np.ndarray, image: str) -> float:
    """Otsu threshold of the whole volume (of |volume| for the residual)."""
    from skimage.filters import threshold_otsu

    data = np.abs(volume) if image == "residual" else volume
    if float(data.max()) == float(data.min()):
        return float(data.max())
    return float(threshold_otsu(data))


#: bin widths that give 16-128 grey levels for each preprocess normalisation (``radiomics.bin_width: auto``)
AUTO_BIN_WIDTH = {"percentile": 0.025, "minmax": 0.025, "zscore": 0.15, "none": 5.0}
GREY_LEVEL_RANGE = (16, 128)


def resolve_bin_width(bin_width: float | str, normalisation: str) -> float:
    """The bin width to use: a number as given, or ``auto`` by the preprocess normalisation."""
    if bin_width == "auto":
        return AUTO_BIN_WIDTH[normalisation]
    return float(bin_width)


def grey_levels(volume: np.ndarray, bin_width: float) -> int:
    """Number of PyRadiomics fixed-bin-width grey levels the intensities span (floor(x / w) bins)."""
    low, high = float(volume.min()), float(volume.max())
    return int(np.floor(high / bin_width) - np.floor(low / bin_width)) + 1


def check_grey_levels(
    case: str, volumes: Mapping[str, Mapping[str, np.ndarray]], box: tuple[slice, slice, slice], bin_width: float
) -> dict[str, int]:
    """Log the effective number of grey levels per image type inside the box; warn outside 16-128."""
    levels: dict[str, int] = {}
    for image in next(iter(volumes.values())):
        counts = [grey_levels(volumes[view][image][box], bin_width) for view in volumes]
        levels[image] = int(np.median(counts))
        lo, hi = GREY_LEVEL_RANGE
        if not lo <= levels[image] <= hi:
            logger.warning(
                "case %s, image %s: %d grey levels in the box with bin width %g (outside %d-%d): "
                "texture and entropy features become unstable; adjust radiomics.bin_width",
                case,
                image,
                levels[image],
                bin_width,
                lo,
                hi,
            )
    logger.info("case %s: grey levels in the box per image type (bin width %g): %s", case, bin_width, levels)
    return levels


def case_features(
    case: str,
    volumes: Mapping[str, Mapping[str, np.ndarray]],
    spacing: Mapping[str, Sequence[float]],
    *,
    box: tuple[slice, slice, slice],
    grid: int,
    families: Sequence[str],
    bin_width: float,
    voxel_array_shift: float = 0.0,
    device: str = "cpu",
) -> pd.DataFrame:
    """Long feature table of one case.

    Args:
        volumes: ``volumes[view][image]`` arrays (slices, rows, cols), images among original, persona, residual.
        spacing: per view, voxel spacing (slices, rows, cols) in mm.
    """
    from radpersona.radiomics import extract_features

    intensity_families = tuple(f for f in families if f != "shape")
    check_grey_levels(case, volumes, box, bin_width)
    frames = []
    for view, images in volumes.items():
        for image, volume in images.items():
            patches = patch_grid(box, grid)
            arrays = [volume[sl] for _, sl in patches]
            blocks = []
            if intensity_families:
                masks = [np.ones(a.shape, dtype=np.uint8) for a in arrays]
                blocks.append(
                    extract_features(
                        arrays,
                        masks,
                        spacing=tuple(spacing[view]),
                        families=intensity_families,
                        bin_width=bin_width,
                        voxel_array_shift=voxel_array_shift,
                        device=device,
                    )
                )
            if "shape" in families:
                threshold = tissue_threshold(volume, image)
                data = np.abs(volume) if image == "residual" else volume
                masks = [(data[sl] > threshold).astype(np.uint8) for _, sl in patches]
                blocks.append(
                    extract_features(
                        arrays,
                        masks,
                        spacing=tuple(spacing[view]),
                        families=("shape",),
                        bin_width=bin_width,
                        voxel_array_shift=voxel_array_shift,
                        device=device,
                    )
                )
            for block in blocks:
                status = block.attrs.get("status")
                values = block.to_numpy(dtype=np.float64)
                for col_idx, column in enumerate(block.columns):
                    family, feature = column.split("_", 1)
                    col_values = values[:, col_idx]
                    if status is not None:
                        col_status = status[column].astype(str).to_numpy()
                    else:
                        col_status = np.where(np.isfinite(col_values), "ok", "not computed")
                    col_status = np.where(
                        np.isfinite(col_values), col_status, np.where(col_status == "ok", "not finite", col_status)
                    )
                    frames.append(
                        pd.DataFrame(
                            {
                                "case": case,
                                "view": view,
                                "image": image,
                                "i": [p[0][0] for p in patches],
                                "j": [p[0][1] for p in patches],
                                "k": [p[0][2] for p in patches],
                                "family": family,
                                "feature": feature,
                                "value": col_values,
                                "status": col_status,
                            }
                        )
                    )
            loc = np.array([p[0] for p in patches], dtype=np.float64)
            for axis, name in enumerate("ijk"):
                frames.append(
                    pd.DataFrame(
                        {
                            "case": case,
                            "view": view,
                            "image": image,
                            "i": loc[:, 0].astype(int),
                            "j": loc[:, 1].astype(int),
                            "k": loc[:, 2].astype(int),
                            "family": LOCATION_FAMILY,
                            "feature": name,
                            "value": loc[:, axis],
                            "status": "ok",
                        }
                    )
                )
    long = pd.concat(frames, ignore_index=True)[LONG_COLUMNS]
    return long.sort_values(["view", "image", "i", "j", "k", "family", "feature"], kind="stable").reset_index(drop=True)


def wide_column(row: Any) -> str:
    """Wide-table column name of a long-table row."""
    return f"{row.view}.{row.image}.p{row.i}{row.j}{row.k}.{row.family}.{row.feature}"


def assemble_wide(long_paths: Sequence[str | Path], out: str | Path, *, settings: Mapping[str, Any]) -> pd.DataFrame:
    """Concatenate per-case long tables into the wide table (one row per case) and write it.

    Every case must yield the same set of columns; values whose status is not ``ok`` stay NaN in the
    wide table and are counted in the metadata (``n_missing``), the reason is in the long tables.
    """
    frames = [pd.read_parquet(p) for p in long_paths]
    long = pd.concat(frames, ignore_index=True)
    long["column"] = [
        f"{v}.{im}.p{i}{j}{k}.{fa}.{fe}"
        for v, im, i, j, k, fa, fe in zip(long.view, long.image, long.i, long.j, long.k, long.family, long.feature)
    ]
    long.loc[long["status"] != "ok", "value"] = np.nan
    wide = long.pivot(index="case", columns="column", values="value")
    keys = long.drop_duplicates("column").sort_values(
        ["view", "image", "i", "j", "k", "family", "feature"], kind="stable"
    )
    wide = wide[keys["column"].tolist()].astype(np.float64)
    counts = long.groupby("case")["column"].nunique()
    if counts.nunique() != 1:
        raise ValueError(f"cases have different feature sets: {counts.to_dict()}")
    wide.columns.name = None
    n_missing = int(wide.isna().sum().sum())
    if n_missing:
        logger.warning("wide table: %d values are missing (status != ok in the long tables)", n_missing)
    meta = {
        "settings": dict(settings),
        "settings_hash": settings_hash(dict(settings)),
        "n_missing": n_missing,
        "n_cases": int(len(wide)),
        "n_features": int(wide.shape[1]),
    }
    out = Path(out)
    write_parquet(wide.reset_index(), out, metadata=meta)
    return wide


def read_wide(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the wide table (index ``case``) and its metadata."""
    wide = pd.read_parquet(path).set_index("case")
    return wide, read_parquet_metadata(path)
