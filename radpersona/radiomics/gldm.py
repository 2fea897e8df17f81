"""Grey Level Dependence Matrix (GLDM) features, PyRadiomics 3.1 definitions (gldm_a = 0), batched.

P(i, j): number of ROI voxels with grey level i that have j - 1 dependent neighbours, a neighbour being
one of the 26 voxels at distance 1 that lies in the ROI and has the same grey level (|i - k| <= 0).
N_z = sum P (= number of ROI voxels), p_g(i) = sum_j P(i, j), p_d(j) = sum_i P(i, j),
eps = numpy.spacing(1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from radpersona.radiomics._batch import DIRECTIONS, RoiBatch

EPS = float(np.spacing(1))


@dataclass
class GldmCoefficients:
    """Dependence matrices P (B, Gc, 27) over each ROI's present grey levels (compact ranks, padding rows 0) with
    marginals and grey-level/dependence vectors."""

    P: torch.Tensor
    n_z: torch.Tensor  # (B,)
    pg: torch.Tensor  # (B, Gc)
    pd: torch.Tensor  # (B, 27)
    i: torch.Tensor  # (B, Gc) grey level of each rank (1 for padding ranks, whose counts are 0)
    j: torch.Tensor  # (27,)


def dependent_neighbours(batch: RoiBatch) -> torch.Tensor:
    """(N,) number of dependent neighbours (same grey level, among the 26 at distance 1) of every ROI voxel, from
    the batch's equal-neighbour pairs along the 13 directions (each pair counts for both of its voxels)."""
    pairs = batch.equal_neighbour_pairs()
    if batch.on_cpu:
        count_np = np.zeros(batch.rank_flat.shape[0], dtype=np.uint8)
        for d, pair in zip(DIRECTIONS, pairs):
            step = batch.flat_offset(d)
            same = pair.numpy().view(np.uint8)
            count_np[:-step] += same
            count_np[step:] += same
        return torch.from_numpy(np.take(count_np, batch.roi_index.numpy()))
    count = torch.zeros(batch.rank_flat.shape, dtype=torch.uint8, device=batch.device)
    for d, pair in zip(DIRECTIONS, pairs):
        step = batch.flat_offset(d)
        count[:-step] += pair
        count[step:] += pair
    return count[batch.roi_index]


def dependence(batch: RoiBatch) -> torch.Tensor:
    """Dependence counts (B, Gc, 27): ROI voxels per compact grey-level rank and number of dependent neighbours."""
    gc = batch.n_compact
    key = batch.item_rank * 27 + dependent_neighbours(batch).to(torch.int64)
    return torch.bincount(key, minlength=batch.size * gc * 27).reshape(batch.size, gc, 27).to(batch.dtype)


def coefficients(batch: RoiBatch) -> GldmCoefficients:
    """Dependence matrices and marginals of the batch."""
    P = dependence(batch)
    lv = batch.level_values.to(P.dtype)
    return GldmCoefficients(
        P=P,
        n_z=P.sum((1, 2)),
        pg=P.sum(2),
        pd=P.sum(1),
        i=torch.where(lv > 0, lv, torch.ones_like(lv)),
        j=torch.arange(1, 28, dtype=P.dtype, device=P.device),
    )


def small_dependence_emphasis(c: GldmCoefficients) -> torch.Tensor:
    """SmallDependenceEmphasis = sum_j p_d(j) / j^2 / N_z."""
    return (c.pd / c.j**2).sum(1) / c.n_z


def large_dependence_emphasis(c: GldmCoefficients) -> torch.Tensor:
    """LargeDependenceEmphasis = sum_j p_d(j) j^2 / N_z."""
    return (c.pd * c.j**2).sum(1) / c.n_z


def gray_level_non_uniformity(c: GldmCoefficients) -> torch.Tensor:
    """GrayLevelNonUniformity = sum_i p_g(i)^2 / N_z."""
    return (c.pg**2).sum(1) / c.n_z


def dependence_non_uniformity(c: GldmCoefficients) -> torch.Tensor:
    """DependenceNonUniformity = sum_j p_d(j)^2 / N_z."""
    return (c.pd**2).sum(1) / c.n_z


def dependence_non_uniformity_normalized(c: GldmCoefficients) -> torch.Tensor:
    """DependenceNonUniformityNormalized = sum_j p_d(j)^2 / N_z^2."""
    return (c.pd**2).sum(1) / c.n_z**2


def gray_level_variance(c: GldmCoefficients) -> torch.Tensor:
    """GrayLevelVariance = sum_i q(i) (i - mu)^2, q = p_g / N_z, mu = sum_i q(i) i."""
    q = c.pg / c.n_z[:, None]
    mu = (q * c.i).sum(1, keepdim=True)
    return (q * (c.i - mu) ** 2).sum(1)


def dependence_variance(c: GldmCoefficients) -> torch.Tensor:
    """DependenceVariance = sum_j q(j) (j - mu)^2, q = p_d / N_z, mu = sum_j q(j) j."""
    q = c.pd / c.n_z[:, None]
    mu = (q * c.j).sum(1, keepdim=True)
    return (q * (c.j - mu) ** 2).sum(1)


def dependence_entropy(c: GldmCoefficients) -> torch.Tensor:
    """DependenceEntropy = -sum_{i,j} q(i, j) log2(q(i, j) + eps), q = P / N_z."""
    q = c.P / c.n_z[:, None, None]
    return -(q * torch.log2(q + EPS)).sum((1, 2))


def low_gray_level_emphasis(c: GldmCoefficients) -> torch.Tensor:
    """LowGrayLevelEmphasis = sum_i p_g(i) / i^2 / N_z."""
    return (c.pg / c.i**2).sum(1) / c.n_z


def high_gray_level_emphasis(c: GldmCoefficients) -> torch.Tensor:
    """HighGrayLevelEmphasis = sum_i p_g(i) i^2 / N_z."""
    return (c.pg * c.i**2).sum(1) / c.n_z


def _weighted(c: GldmCoefficients, weight: torch.Tensor) -> torch.Tensor:
    return (c.P * weight).sum((1, 2)) / c.n_z


def small_dependence_low_gray_level_emphasis(c: GldmCoefficients) -> torch.Tensor:
    """SmallDependenceLowGrayLevelEmphasis = sum_{i,j} P(i, j) / (i^2 j^2) / N_z."""
    return _weighted(c, 1 / (c.i[:, :, None] ** 2 * c.j**2))


def small_dependence_high_gray_level_emphasis(c: GldmCoefficients) -> torch.Tensor:
    """SmallDependenceHighGrayLevelEmphasis = sum_{i,j} P(i, j) i^2 / j^2 / N_z."""
    return _weighted(c, c.i[:, :, None] ** 2 / c.j**2)


def large_dependence_low_gray_level_emphasis(c: GldmCoefficients) -> torch.Tensor:
    """LargeDependenceLowGrayLevelEmphasis = sum_{i,j} P(i, j) j^2 / i^2 / N_z."""
    return _weighted(c, c.j**2 / c.i[:, :, None] ** 2)


def large_dependence_high_gray_level_emphasis(c: GldmCoefficients) -> torch.Tensor:
    """LargeDependenceHighGrayLevelEmphasis = sum_{i,j} P(i, j) i^2 j^2 / N_z."""
    return _weighted(c, c.i[:, :, None] ** 2 * c.j**2)


#: PyRadiomics feature name -> function.
FEATURES: dict[str, Callable[[GldmCoefficients], torch.Tensor]] = {
    "DependenceEntropy": dependence_entropy,
    "DependenceNonUniformity": dependence_non_uniformity,
    "DependenceNonUniformityNormalized": dependence_non_uniformity_normalized,
    "DependenceVariance": dependence_variance,
    "GrayLevelNonUniformity": gray_level_non_uniformity,
    "GrayLevelVariance": gray_level_variance,
    "HighGrayLevelEmphasis": high_gray_level_emphasis,
    "LargeDependenceEmphasis": large_dependence_emphasis,
    "LargeDependenceHighGrayLevelEmphasis": large_dependence_high_gray_level_emphasis,
    "LargeDependenceLowGrayLevelEmphasis": large_dependence_low_gray_level_emphasis,
    "LowGrayLevelEmphasis": low_gray_level_emphasis,
    "SmallDependenceEmphasis": small_dependence_emphasis,
    "SmallDependenceHighGrayLevelEmphasis": small_dependence_high_gray_level_emphasis,
    "SmallDependenceLowGrayLevelEmphasis": small_dependence_low_gray_level_emphasis,
}


def compute(batch: RoiBatch, *, voxel_array_shift: float = 0.0) -> dict[str, torch.Tensor]:
    """All GLDM features of the batch, name -> (B,) tensor (``voxel_array_shift`` is unused)."""
    c = coefficients(batch)
    return {name: fn(c) for name, fn in FEATURES.items()}
