"""Grey Level Run Length Matrix (GLRLM) features, PyRadiomics 3.1 definitions, batched over ROIs.

P(i, j | a): number of runs (maximal sequences of consecutive ROI voxels with equal grey level i)
of length j along direction a, for each of the 13 3-D directions that only move along axes in which
the ROI's bounding box is longer than one voxel (PyRadiomics generates no other angle) and along which
some line holds at least two ROI voxels (PyRadiomics' C code empties other directions). Per direction:
N_r = sum P (number of runs), N_p = sum_j j p_r(j) (number of voxels), p_g(i) = sum_j P(i, j),
p_r(j) = sum_i P(i, j); features are averaged over directions. i runs over grey levels, j over lengths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from radpersona.radiomics._batch import DIRECTIONS, RoiBatch, angle_mean, direction_allowed, neighbour

EPS = float(np.spacing(1))


@dataclass
class GlrlmCoefficients:
    """Run-length matrices P (B, A, G, R) with marginals and grey-level/length vectors."""

    P: torch.Tensor  # (B, A, Gc, R) over compact grey-level ranks
    used: torch.Tensor  # (B, A)
    n_runs: torch.Tensor  # (B, A)
    pg: torch.Tensor  # (B, A, Gc)
    pr: torch.Tensor  # (B, A, R)
    i: torch.Tensor  # (B, 1, Gc) grey level of each rank (1 for padding ranks, whose counts are 0)
    j: torch.Tensor  # (R,)


def run_lengths(batch: RoiBatch) -> torch.Tensor:
    """Run-length counts (B, 13, Gc, R) over compact grey-level ranks, R the largest bounding-box side."""
    g = batch.n_compact
    r = int(batch.box_sizes.max())
    grey = batch.rank.contiguous()  # rank + 1, 0 outside the ROI: equal ranks <=> equal grey levels
    item = torch.arange(batch.size, device=batch.device)[:, None, None, None]
    dump = batch.size * g * r
    mats = []
    for d in DIRECTIONS:
        back = tuple(-k for k in d)
        start = batch.mask & (neighbour(grey, back, 0) != grey)
        link = batch.mask & (neighbour(grey, d, 0) == grey)
        length = start.to(torch.int64)
        cont = start & link
        step = 1
        while bool(cont.any()):
            length += cont
            step += 1
            cont = cont & neighbour(link, tuple(step * k - k for k in d), False)
        flat = (item * g + grey - 1) * r + length - 1
        flat = torch.where(start, flat, torch.full_like(flat, dump))  # non-starts go to a dropped bin
        mats.append(torch.bincount(flat.reshape(-1), minlength=dump + 1)[:dump].reshape(batch.size, g, r))
    return torch.stack(mats, dim=1).to(batch.dtype)


def multi_element_directions(batch: RoiBatch) -> torch.Tensor:
    """(B, 13) True where some line along the direction holds two or more ROI voxels."""
    r = int(batch.box_sizes.max())
    out = torch.zeros(batch.size, len(DIRECTIONS), dtype=torch.bool, device=batch.device)
    for a, d in enumerate(DIRECTIONS):
        todo = torch.arange(batch.size, device=batch.device)
        for k in range(1, r):
            if len(todo) == 0:
                break
            m = batch.mask[todo]
            found = (m & neighbour(m, tuple(k * v for v in d), False)).flatten(1).any(1)
            out[todo[found], a] = True
            todo = todo[~found]
    return out


def coefficients(batch: RoiBatch) -> GlrlmCoefficients:
    """Run-length matrices and marginals of the batch."""
    P = run_lengths(batch)
    lv = batch.level_values.to(P.dtype)
    allowed = direction_allowed(batch.box_sizes, batch.device) & multi_element_directions(batch)
    P = P * allowed[:, :, None, None].to(P.dtype)
    n_runs = P.sum((2, 3))
    used = n_runs > 0
    return GlrlmCoefficients(
        P=P, used=used, n_runs=n_runs, pg=P.sum(3), pr=P.sum(2),
        i=torch.where(lv > 0, lv, torch.ones_like(lv))[:, None, :],
        j=torch.arange(1, P.shape[3] + 1, dtype=P.dtype, device=P.device),
    )


def _mean(c: GlrlmCoefficients, per_angle: torch.Tensor) -> torch.Tensor:
    return angle_mean(per_angle, c.used)


def short_run_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """ShortRunEmphasis = sum_j p_r(j) / j^2 / N_r."""
    return _mean(c, (c.pr / c.j**2).sum(2) / c.n_runs)


def long_run_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """LongRunEmphasis = sum_j p_r(j) j^2 / N_r."""
    return _mean(c, (c.pr * c.j**2).sum(2) / c.n_runs)


def gray_level_non_uniformity(c: GlrlmCoefficients) -> torch.Tensor:
    """GrayLevelNonUniformity = sum_i p_g(i)^2 / N_r."""
    return _mean(c, (c.pg**2).sum(2) / c.n_runs)


def gray_level_non_uniformity_normalized(c: GlrlmCoefficients) -> torch.Tensor:
    """GrayLevelNonUniformityNormalized = sum_i p_g(i)^2 / N_r^2."""
    return _mean(c, (c.pg**2).sum(2) / c.n_runs**2)


def run_length_non_uniformity(c: GlrlmCoefficients) -> torch.Tensor:
    """RunLengthNonUniformity = sum_j p_r(j)^2 / N_r."""
    return _mean(c, (c.pr**2).sum(2) / c.n_runs)


def run_length_non_uniformity_normalized(c: GlrlmCoefficients) -> torch.Tensor:
    """RunLengthNonUniformityNormalized = sum_j p_r(j)^2 / N_r^2."""
    return _mean(c, (c.pr**2).sum(2) / c.n_runs**2)


def run_percentage(c: GlrlmCoefficients) -> torch.Tensor:
    """RunPercentage = N_r / N_p, N_p = sum_j j p_r(j)."""
    return _mean(c, c.n_runs / (c.pr * c.j).sum(2))


def gray_level_variance(c: GlrlmCoefficients) -> torch.Tensor:
    """GrayLevelVariance = sum_i q(i) (i - mu)^2, q = p_g / N_r, mu = sum_i q(i) i."""
    q = c.pg / c.n_runs[:, :, None]
    mu = (q * c.i).sum(2, keepdim=True)
    return _mean(c, (q * (c.i - mu) ** 2).sum(2))


def run_variance(c: GlrlmCoefficients) -> torch.Tensor:
    """RunVariance = sum_j q(j) (j - mu)^2, q = p_r / N_r, mu = sum_j q(j) j."""
    q = c.pr / c.n_runs[:, :, None]
    mu = (q * c.j).sum(2, keepdim=True)
    return _mean(c, (q * (c.j - mu) ** 2).sum(2))


def run_entropy(c: GlrlmCoefficients) -> torch.Tensor:
    """RunEntropy = -sum_{i,j} q(i, j) log2(q(i, j) + eps), q = P / N_r."""
    q = c.P / c.n_runs[:, :, None, None]
    return _mean(c, -(q * torch.log2(q + EPS)).sum((2, 3)))


def low_gray_level_run_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """LowGrayLevelRunEmphasis = sum_i p_g(i) / i^2 / N_r."""
    return _mean(c, (c.pg / c.i**2).sum(2) / c.n_runs)


def high_gray_level_run_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """HighGrayLevelRunEmphasis = sum_i p_g(i) i^2 / N_r."""
    return _mean(c, (c.pg * c.i**2).sum(2) / c.n_runs)


def _weighted(c: GlrlmCoefficients, weight: torch.Tensor) -> torch.Tensor:
    return _mean(c, (c.P * weight).sum((2, 3)) / c.n_runs)


def short_run_low_gray_level_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """ShortRunLowGrayLevelEmphasis = sum_{i,j} P(i, j) / (i^2 j^2) / N_r."""
    return _weighted(c, 1 / (c.i[:, :, :, None] ** 2 * c.j[None, None, None, :] ** 2))


def short_run_high_gray_level_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """ShortRunHighGrayLevelEmphasis = sum_{i,j} P(i, j) i^2 / j^2 / N_r."""
    return _weighted(c, c.i[:, :, :, None] ** 2 / c.j[None, None, None, :] ** 2)


def long_run_low_gray_level_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """LongRunLowGrayLevelEmphasis = sum_{i,j} P(i, j) j^2 / i^2 / N_r."""
    return _weighted(c, c.j[None, None, None, :] ** 2 / c.i[:, :, :, None] ** 2)


def long_run_high_gray_level_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """LongRunHighGrayLevelEmphasis = sum_{i,j} P(i, j) i^2 j^2 / N_r."""
    return _weighted(c, c.i[:, :, :, None] ** 2 * c.j[None, None, None, :] ** 2)


#: PyRadiomics feature name -> function.
FEATURES: dict[str, Callable[[GlrlmCoefficients], torch.Tensor]] = {
    "GrayLevelNonUniformity": gray_level_non_uniformity,
    "GrayLevelNonUniformityNormalized": gray_level_non_uniformity_normalized,
    "GrayLevelVariance": gray_level_variance,
    "HighGrayLevelRunEmphasis": high_gray_level_run_emphasis,
    "LongRunEmphasis": long_run_emphasis,
    "LongRunHighGrayLevelEmphasis": long_run_high_gray_level_emphasis,
    "LongRunLowGrayLevelEmphasis": long_run_low_gray_level_emphasis,
    "LowGrayLevelRunEmphasis": low_gray_level_run_emphasis,
    "RunEntropy": run_entropy,
    "RunLengthNonUniformity": run_length_non_uniformity,
    "RunLengthNonUniformityNormalized": run_length_non_uniformity_normalized,
    "RunPercentage": run_percentage,
    "RunVariance": run_variance,
    "ShortRunEmphasis": short_run_emphasis,
    "ShortRunHighGrayLevelEmphasis": short_run_high_gray_level_emphasis,
    "ShortRunLowGrayLevelEmphasis": short_run_low_gray_level_emphasis,
}


def compute(batch: RoiBatch, *, voxel_array_shift: float = 0.0) -> dict[str, torch.Tensor]:
    """All GLRLM features of the batch, name -> (B,) tensor (``voxel_array_shift`` is unused)."""
    c = coefficients(batch)
    return {name: fn(c) for name, fn in FEATURES.items()}
