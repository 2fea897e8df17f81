"""Neighbouring Grey Tone Difference Matrix (NGTDM) features, PyRadiomics 3.1 definitions, batched.

For every ROI voxel, A = mean grey level of those of its 26 neighbours (distance 1) that lie in the ROI;
a voxel without such a neighbour counts with a difference of 0 (as in PyRadiomics' C code).
n_i = number of ROI voxels with grey level i, s_i = sum over them of |i - A|, N_vp = sum n_i, p_i = n_i / N_vp,
N_gp = number of grey levels with p_i > 0. Sums over i, j below run over grey levels with p > 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from radpersona.radiomics._batch import RoiBatch

NAN_REASON = "undefined for this ROI"


@dataclass
class NgtdmCoefficients:
    """Per grey level probabilities p (B, Gc) and differences s (B, Gc) over each ROI's present levels (compact
    ranks, padded with p = s = 0), and their companions."""

    p: torch.Tensor
    s: torch.Tensor
    present: torch.Tensor  # (B, Gc) p_i > 0
    i: torch.Tensor  # (B, Gc) grey level of each rank
    n_vp: torch.Tensor  # (B,)
    n_gp: torch.Tensor  # (B,)


def neighbourhood_sums(batch: RoiBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per ROI voxel (N,) int64: the sum of the grey levels of its 26 neighbours that lie in the ROI, and their
    number, as 3x3x3 box sums minus the voxel itself (integers, exact), computed on the flat padded layout with
    three separable 3-tap sums (steps 1, Xp, Yp Xp; a ROI voxel's box never leaves its item's padded box)."""
    _, yp, xp = batch.padded_shape
    wide = batch.max_level >= 2**20  # 27 * 32 * G must fit the integers
    grey: Any  # a numpy array on the CPU, a tensor elsewhere (and so is box)
    if batch.on_cpu:
        grey = batch.grey_flat.numpy().astype(np.int64) if wide else batch.grey_flat.numpy()
        box = grey * 32
        box += grey > 0  # grey level and ROI membership in one integer (26 < 32)
    else:
        grey = batch.grey_flat.to(torch.int64) if wide else batch.grey_flat
        box = grey * 32 + (grey > 0).to(grey.dtype)
    shift = 0
    for step in (1, xp, yp * xp):
        box = box[: -2 * step] + box[step:-step] + box[2 * step :]
        shift += step
    if batch.on_cpu:
        sums = torch.from_numpy(np.take(box, batch.roi_index.numpy() - shift).astype(np.int64))
    else:
        sums = box[batch.roi_index - shift].to(torch.int64)
    return (sums >> 5) - batch.roi_grey, (sums & 31) - 1


def coefficients(batch: RoiBatch) -> NgtdmCoefficients:
    """NGTDM columns n_i, s_i of the batch over compact grey-level ranks, as p_i, s_i."""
    dtype = batch.dtype
    total, count = neighbourhood_sums(batch)
    if batch.on_cpu:  # |i - A| per voxel, 0 without a neighbour (numpy: fewer temporaries)
        count_np = count.numpy()
        diff_np = total.numpy() / np.maximum(count_np, 1)
        np.subtract(batch.roi_grey.numpy(), diff_np, out=diff_np)
        np.abs(diff_np, out=diff_np)
        diff_np *= count_np > 0  # 0 without a neighbour
        diff = torch.from_numpy(diff_np).to(dtype)
    else:
        grey = batch.roi_grey.to(dtype)
        has = count > 0
        mean_nb = total.to(dtype) / torch.where(has, count, torch.ones_like(count)).to(dtype)
        diff = torch.where(has, (grey - mean_nb).abs(), torch.zeros_like(grey))
    gc = batch.n_compact
    key = batch.item_rank
    n = torch.bincount(key, minlength=batch.size * gc).reshape(batch.size, gc).to(dtype)
    s = torch.bincount(key, weights=diff, minlength=batch.size * gc).reshape(batch.size, gc).to(dtype)
    n_vp = n.sum(1)
    present = n > 0
    return NgtdmCoefficients(
        p=n / n_vp[:, None],
        s=s,
        present=present,
        i=batch.level_values.to(dtype),
        n_vp=n_vp,
        n_gp=present.sum(1).to(dtype),
    )


def _pairs(c: NgtdmCoefficients) -> torch.Tensor:
    return c.present[:, :, None] & c.present[:, None, :]


def coarseness(c: NgtdmCoefficients) -> torch.Tensor:
    """Coarseness = 1 / sum_i p_i s_i; 1e6 where the sum is 0 (a flat ROI)."""
    total = (c.p * c.s).sum(1)
    safe = torch.where(total == 0, torch.ones_like(total), total)
    return torch.where(total == 0, torch.full_like(total, 1e6), 1 / safe)


def contrast(c: NgtdmCoefficients) -> torch.Tensor:
    """Contrast = [1 / (N_gp (N_gp - 1)) sum_{i,j} p_i p_j (i - j)^2] [1 / N_vp sum_i s_i]; 0 if N_gp = 1."""
    di = (c.i[:, :, None] - c.i[:, None, :]) ** 2
    value = (c.p[:, :, None] * c.p[:, None, :] * di).sum((1, 2)) * c.s.sum(1) / c.n_vp
    div = c.n_gp * (c.n_gp - 1)
    return torch.where(div == 0, torch.zeros_like(value), value / torch.where(div == 0, torch.ones_like(div), div))


def busyness(c: NgtdmCoefficients) -> torch.Tensor:
    """Busyness = sum_i p_i s_i / sum_{i,j} |i p_i - j p_j|; 0 where the denominator is 0."""
    ip = c.i * c.p
    diff = torch.where(_pairs(c), (ip[:, :, None] - ip[:, None, :]).abs(), torch.zeros((), dtype=ip.dtype))
    den = diff.sum((1, 2))
    num = (c.p * c.s).sum(1)
    return torch.where(den == 0, torch.zeros_like(num), num / torch.where(den == 0, torch.ones_like(den), den))


def complexity(c: NgtdmCoefficients) -> torch.Tensor:
    """Complexity = 1 / N_vp sum_{i,j} |i - j| (p_i s_i + p_j s_j) / (p_i + p_j)."""
    ps = c.p * c.s
    num = torch.where(_pairs(c), ps[:, :, None] + ps[:, None, :], torch.zeros((), dtype=ps.dtype))
    den = c.p[:, :, None] + c.p[:, None, :]
    den = torch.where(den == 0, torch.ones_like(den), den)
    di = (c.i[:, :, None] - c.i[:, None, :]).abs()
    return (di * num / den).sum((1, 2)) / c.n_vp


def strength(c: NgtdmCoefficients) -> torch.Tensor:
    """Strength = sum_{i,j} (p_i + p_j)(i - j)^2 / sum_i s_i; 0 where sum_i s_i = 0."""
    di = (c.i[:, :, None] - c.i[:, None, :]) ** 2
    val = torch.where(_pairs(c), (c.p[:, :, None] + c.p[:, None, :]) * di, torch.zeros((), dtype=c.p.dtype))
    num = val.sum((1, 2))
    den = c.s.sum(1)
    return torch.where(den == 0, torch.zeros_like(num), num / torch.where(den == 0, torch.ones_like(den), den))


#: PyRadiomics feature name -> function.
FEATURES: dict[str, Callable[[NgtdmCoefficients], torch.Tensor]] = {
    "Busyness": busyness,
    "Coarseness": coarseness,
    "Complexity": complexity,
    "Contrast": contrast,
    "Strength": strength,
}


def compute(batch: RoiBatch, *, voxel_array_shift: float = 0.0) -> dict[str, torch.Tensor]:
    """All NGTDM features of the batch, name -> (B,) tensor (``voxel_array_shift`` is unused)."""
    c = coefficients(batch)
    return {name: fn(c) for name, fn in FEATURES.items()}
