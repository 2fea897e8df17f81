"""Batched, PyRadiomics-exact radiomic features (first order, shape, GLCM, GLRLM, GLSZM, GLDM, NGTDM).

Entry point: :func:`extract_features`. One module per feature family; every feature is a function whose
docstring carries its formula. Semantics are PyRadiomics 3.1 with its defaults plus the given
``binWidth`` and ``voxelArrayShift`` (distances [1], symmetrical GLCM, gldm_a 0, no resampling, no
normalisation, ``mask > 0`` is the ROI). Reported in addition to PyRadiomics' default set:
firstorder_StandardDeviation, shape_Compactness1 and shape_Compactness2 (deprecated there).

Missing values: a cell is NaN when the item's mask is empty, when the ROI is a single voxel (PyRadiomics
refuses those) or when the feature is undefined for the ROI (e.g. GLCM without any pair of neighbouring
ROI voxels). The returned DataFrame's ``attrs["status"]`` is a DataFrame of the same shape holding
``"ok"`` or the reason for every cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np
import pandas as pd
import torch

from radpersona.errors import ConfigError, InputDataError
from radpersona.radiomics import firstorder, glcm, gldm, glrlm, glszm, ngtdm, shape
from radpersona.radiomics._batch import PreparedRois, check_finite, layout_batch, prepare_rois, roi_groups

FAMILY_MODULES: dict[str, ModuleType] = {
    "firstorder": firstorder,
    "shape": shape,
    "glcm": glcm,
    "glrlm": glrlm,
    "glszm": glszm,
    "gldm": gldm,
    "ngtdm": ngtdm,
}
ALL_FAMILIES: tuple[str, ...] = tuple(FAMILY_MODULES)
BACKENDS: tuple[str, ...] = ("torch", "pyradiomics")

#: Upper bounds on one chunk's padded work arrays (elements), to keep memory modest.
_VOXEL_BUDGET = 4_000_000
_MATRIX_BUDGET = 40_000_000
#: Image voxels prepared at a time (host memory for the stacked items, their intensities and grey levels).
_PREPARE_BUDGET = 32_000_000

__all__ = ["extract_features", "feature_names", "ALL_FAMILIES"]


def feature_names(families: Sequence[str] = ALL_FAMILIES) -> list[str]:
    """Column names ``{family}_{Feature}`` that :func:`extract_features` returns for ``families``."""
    _check_families(families)
    return [f"{fam}_{name}" for fam in families for name in FAMILY_MODULES[fam].FEATURES]


def _check_families(families: Sequence[str]) -> None:
    if isinstance(families, str):
        raise ConfigError(f"families must be a sequence of family names, not the string {families!r}")
    unknown = [f for f in families if f not in FAMILY_MODULES]
    if unknown:
        raise ConfigError(f"unknown radiomics families {unknown}; known: {list(FAMILY_MODULES)}")


def _validate(
    images: Sequence[np.ndarray], masks: Sequence[np.ndarray], spacing: Sequence[float], bin_width: float
) -> tuple[list[np.ndarray], list[np.ndarray], tuple[float, float, float]]:
    """Arrays of the items and their masks, after checking counts, shapes, spacing and bin width."""
    if len(images) != len(masks):
        raise InputDataError("images and masks differ in length", value=(len(images), len(masks)))
    imgs, msks = [np.asarray(image) for image in images], [np.asarray(mask) for mask in masks]
    for k, (image, mask) in enumerate(zip(imgs, msks)):
        if image.ndim != 3 or image.shape != mask.shape:
            raise InputDataError(
                f"item {k}: image and mask must be 3-D arrays of one shape", value=(image.shape, mask.shape)
            )
    spacing_t = tuple(float(s) for s in spacing)
    if len(spacing_t) != 3 or not all(s > 0 for s in spacing_t):
        raise ConfigError(f"spacing must be three positive numbers (slices, rows, cols) in mm, not {spacing!r}")
    if not bin_width > 0:
        raise ConfigError(f"bin_width must be positive, not {bin_width!r}")
    return imgs, msks, spacing_t


def _chunks(prepared: PreparedRois) -> list[list[int]]:
    """Group prepared items (sorted by ROI box volume) so that padded work arrays stay within budget."""
    boxes = np.prod(prepared.box_sizes + 2, axis=1)
    order = np.argsort(boxes, kind="stable")
    chunks: list[list[int]] = []
    current: list[int] = []
    box_max = ng_max = 0
    for k in order.tolist():
        box, ng = int(boxes[k]), int(prepared.n_levels[k]) + 1
        b2, g2 = max(box_max, box), max(ng_max, ng)
        n = len(current) + 1
        if current and (n * b2 > _VOXEL_BUDGET or n * 13 * g2 * g2 > _MATRIX_BUDGET):
            chunks.append(current)
            current, b2, g2 = [], box, ng
        current.append(k)
        box_max, ng_max = b2, g2
    if current:
        chunks.append(current)
    if len(chunks) == 1:
        chunks[0].sort()  # one chunk: keep the prepared order (no gathering of voxel segments)
    return chunks


def extract_features(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    families: Sequence[str] = ALL_FAMILIES,
    bin_width: float = 25.0,
    voxel_array_shift: float = 0.0,
    device: str = "cpu",
    dtype: str = "float64",
    backend: str = "torch",
) -> pd.DataFrame:
    """Radiomic features of every (image, mask) item, one row per item, PyRadiomics 3.1 semantics.

    Args:
        images: 3-D arrays (slices, rows, cols); shapes may differ between items.
        masks: arrays of the same shapes; ``mask > 0`` is the ROI.
        spacing: voxel size (slices, rows, cols) in mm, shared by all items.
        families: feature families to compute, any of :data:`ALL_FAMILIES`.
        bin_width: fixed bin width of the grey-level discretisation (PyRadiomics ``binWidth``).
        voxel_array_shift: added to intensities in Energy, TotalEnergy and RootMeanSquared.
        device: torch device for the batched arithmetic ("cpu", "cuda", ...).
        dtype: "float64" (exact) or "float32" (faster on GPUs, about 1e-3 relative agreement).
        backend: "torch" (this engine) or "pyradiomics" (the real PyRadiomics, one item at a time).

    Returns:
        DataFrame with columns ``{family}_{Feature}`` (see :func:`feature_names`), float64; its
        ``attrs["status"]`` DataFrame (same index and columns) holds "ok" or why a cell is NaN
        ("empty mask", "single voxel", or a family-specific reason).

    Raises:
        InputDataError: images and masks of different count or shape, or non-finite ROI intensities.
        ConfigError: unknown family, backend or dtype, or an invalid spacing or bin width.
    """
    _check_families(families)
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if dtype not in ("float64", "float32"):
        raise ConfigError(f"dtype must be 'float64' or 'float32', not {dtype!r}")
    imgs, msks, spacing_t = _validate(images, masks, spacing, bin_width)
    columns = feature_names(families)
    n_items = len(imgs)
    values = np.full((n_items, len(columns)), np.nan)
    status = np.full((n_items, len(columns)), "ok", dtype=object)

    if backend == "pyradiomics":
        from radpersona.radiomics._reference import extract_with_pyradiomics

        for index, stack, rois in roi_groups(imgs, msks):
            check_finite(index, stack, rois)
        names = {fam: list(FAMILY_MODULES[fam].FEATURES) for fam in families}
        rows, item_status = extract_with_pyradiomics(
            imgs, msks, spacing=spacing_t, names=names, bin_width=bin_width, voxel_array_shift=voxel_array_shift
        )
        for k, (row, st) in enumerate(zip(rows, item_status)):
            for c, col in enumerate(columns):
                value = row.get(col, np.nan)
                values[k, c] = value
                if st != "ok":
                    status[k, c] = st
                elif not np.isfinite(value):
                    status[k, c] = "undefined (pyradiomics returned NaN)"
        return _frame(values, status, columns)

    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    dev = torch.device(device)
    with_levels = any(fam != "shape" for fam in families)  # shape ignores intensities
    col_index = {col: c for c, col in enumerate(columns)}
    for block in _item_blocks(imgs):  # bounded host memory for very many items
        prepared, counts = prepare_rois([imgs[k] for k in block], [msks[k] for k in block], bin_width, with_levels)
        status[block[counts == 0], :] = "empty mask"
        status[block[counts == 1], :] = "single voxel"
        for chunk in _chunks(prepared):
            batch = layout_batch(prepared, chunk, spacing=spacing_t, dtype=torch_dtype, device=dev)
            rows = block[prepared.item[chunk]]
            for fam in families:
                module = FAMILY_MODULES[fam]
                result = module.compute(batch, voxel_array_shift=voxel_array_shift)
                reason = getattr(module, "NAN_REASON", "undefined")
                cols = [col_index[f"{fam}_{name}"] for name in result]
                arr = torch.stack([t.detach() for t in result.values()], dim=1).to("cpu", torch.float64).numpy()
                values[rows[:, None], cols] = arr
                bad_rows, bad_cols = np.nonzero(~np.isfinite(arr))
                if len(bad_rows):
                    status[rows[bad_rows], np.asarray(cols)[bad_cols]] = reason
    return _frame(values, status, columns)


def _item_blocks(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Consecutive items in blocks of at most _PREPARE_BUDGET image voxels (at least one item each)."""
    sizes = np.array([image.size for image in images], dtype=np.int64)
    blocks, first, total = [], 0, 0
    for k, size in enumerate(sizes.tolist()):
        if k > first and total + size > _PREPARE_BUDGET:
            blocks.append(np.arange(first, k))
            first, total = k, 0
        total += size
    if len(sizes):
        blocks.append(np.arange(first, len(sizes)))
    return blocks


def _frame(values: np.ndarray, status: np.ndarray, columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(values, columns=columns, dtype="float64")
    frame.attrs["status"] = pd.DataFrame(status, columns=columns, dtype=object)
    return frame
