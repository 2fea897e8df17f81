"""First-order (intensity histogram) features, PyRadiomics 3.1 definitions, batched over ROIs.

Notation: X the N intensities of the ROI, c = voxelArrayShift, p(i) the fraction of ROI voxels in
grey level i after fixed-bin-width discretisation, V_vox the voxel volume in mm^3, eps =
numpy.spacing(1). Percentiles use numpy's default linear interpolation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from radpersona.radiomics._batch import RoiBatch

EPS = float(np.spacing(1))


@dataclass
class FirstOrderCoefficients:
    """Per-batch quantities shared by the first-order features (shapes (B, N) or (B,))."""

    x: torch.Tensor  # intensities, NaN-padded
    x0: torch.Tensor  # intensities, 0-padded
    valid: torch.Tensor
    n: torch.Tensor  # voxel count
    mean: torch.Tensor
    p: torch.Tensor  # (B, G) grey-level probabilities
    shift: float
    voxel_volume: float
    sorted_x: torch.Tensor  # intensities sorted ascending per item, +inf-padded


def coefficients(batch: RoiBatch, voxel_array_shift: float) -> FirstOrderCoefficients:
    """Intensity arrays, means and the discretised histogram of the batch."""
    x = batch.values
    valid = batch.valid
    x0 = torch.where(valid, x, torch.zeros_like(x))
    n = batch.n_voxels.to(x.dtype)
    counts = torch.zeros(batch.size, batch.max_level + 1, dtype=x.dtype, device=x.device)
    counts.scatter_add_(1, batch.levels, valid.to(x.dtype))
    p = counts[:, 1:] / n[:, None]
    return FirstOrderCoefficients(
        x=x,
        x0=x0,
        valid=valid,
        n=n,
        mean=x0.sum(1) / n,
        p=p,
        shift=float(voxel_array_shift),
        voxel_volume=float(np.prod(batch.spacing)),
        sorted_x=_sorted(torch.where(valid, x, torch.full_like(x, float("inf")))),
    )


def _sorted(x: torch.Tensor) -> torch.Tensor:
    """``x`` sorted ascending along dim 1 (numpy's vectorised sort on the CPU, torch's elsewhere)."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy(), axis=1))
    return x.sort(dim=1).values


def _masked_mean(c: FirstOrderCoefficients, values: torch.Tensor) -> torch.Tensor:
    return torch.where(c.valid, values, torch.zeros_like(values)).sum(1) / c.n


def _central_moment(c: FirstOrderCoefficients, order: int) -> torch.Tensor:
    return _masked_mean(c, (c.x - c.mean[:, None]) ** order)


def _percentile(c: FirstOrderCoefficients, q: float) -> torch.Tensor:
    """numpy.percentile's default (linear) method on each item's sorted intensities."""
    h = (c.n - 1) * (q / 100.0)
    lo = h.floor()
    t = h - lo
    lo_i = lo.long()
    hi_i = torch.minimum(lo_i + 1, c.n.long() - 1)
    a = c.sorted_x.gather(1, lo_i[:, None])[:, 0]
    b = c.sorted_x.gather(1, hi_i[:, None])[:, 0]
    diff = b - a
    return torch.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def energy(c: FirstOrderCoefficients) -> torch.Tensor:
    """Energy = sum_{i=1..N} (X(i) + c)^2."""
    return torch.where(c.valid, (c.x + c.shift) ** 2, torch.zeros_like(c.x)).sum(1)


def total_energy(c: FirstOrderCoefficients) -> torch.Tensor:
    """TotalEnergy = V_vox * sum_{i=1..N} (X(i) + c)^2."""
    return energy(c) * c.voxel_volume


def entropy(c: FirstOrderCoefficients) -> torch.Tensor:
    """Entropy = -sum_i p(i) log2(p(i) + eps)."""
    return -(c.p * torch.log2(c.p + EPS)).sum(1)


def minimum(c: FirstOrderCoefficients) -> torch.Tensor:
    """Minimum = min(X)."""
    return torch.where(c.valid, c.x, torch.full_like(c.x, float("inf"))).amin(1)


def percentile_10(c: FirstOrderCoefficients) -> torch.Tensor:
    """10Percentile = P10(X), linear interpolation between order statistics (numpy default)."""
    return _percentile(c, 10)


def percentile_90(c: FirstOrderCoefficients) -> torch.Tensor:
    """90Percentile = P90(X), linear interpolation between order statistics (numpy default)."""
    return _percentile(c, 90)


def maximum(c: FirstOrderCoefficients) -> torch.Tensor:
    """Maximum = max(X)."""
    return torch.where(c.valid, c.x, torch.full_like(c.x, float("-inf"))).amax(1)


def mean(c: FirstOrderCoefficients) -> torch.Tensor:
    """Mean = (1/N) sum_i X(i)."""
    return c.mean


def median(c: FirstOrderCoefficients) -> torch.Tensor:
    """Median = P50(X) (mean of the two middle values for even N)."""
    return _percentile(c, 50)


def interquartile_range(c: FirstOrderCoefficients) -> torch.Tensor:
    """InterquartileRange = P75(X) - P25(X)."""
    return _percentile(c, 75) - _percentile(c, 25)


def range_(c: FirstOrderCoefficients) -> torch.Tensor:
    """Range = max(X) - min(X)."""
    return maximum(c) - minimum(c)


def mean_absolute_deviation(c: FirstOrderCoefficients) -> torch.Tensor:
    """MeanAbsoluteDeviation = (1/N) sum_i |X(i) - mean(X)|."""
    return _masked_mean(c, (c.x - c.mean[:, None]).abs())


def robust_mean_absolute_deviation(c: FirstOrderCoefficients) -> torch.Tensor:
    """RobustMeanAbsoluteDeviation = (1/N_1090) sum_{i: P10 <= X(i) <= P90} |X(i) - mean(X_1090)|."""
    p10 = _percentile(c, 10)[:, None]
    p90 = _percentile(c, 90)[:, None]
    keep = c.valid & (c.x >= p10) & (c.x <= p90)
    n = keep.sum(1).to(c.x.dtype)
    zeros = torch.zeros_like(c.x)
    m = torch.where(keep, c.x, zeros).sum(1) / n
    return torch.where(keep, (c.x - m[:, None]).abs(), zeros).sum(1) / n


def root_mean_squared(c: FirstOrderCoefficients) -> torch.Tensor:
    """RootMeanSquared = sqrt((1/N) sum_i (X(i) + c)^2)."""
    return torch.sqrt(energy(c) / c.n)


def standard_deviation(c: FirstOrderCoefficients) -> torch.Tensor:
    """StandardDeviation = sqrt((1/N) sum_i (X(i) - mean(X))^2) (deprecated in PyRadiomics, kept here)."""
    return torch.sqrt(_central_moment(c, 2))


def skewness(c: FirstOrderCoefficients) -> torch.Tensor:
    """Skewness = mu_3 / mu_2^(3/2), mu_k = (1/N) sum_i (X(i) - mean)^k; mu_3 itself (~0) where mu_2 = 0."""
    m2 = _central_moment(c, 2)
    m3 = _central_moment(c, 3)
    return m3 / torch.where(m2 == 0, torch.ones_like(m2), m2) ** 1.5


def kurtosis(c: FirstOrderCoefficients) -> torch.Tensor:
    """Kurtosis = mu_4 / mu_2^2 (not excess kurtosis); mu_4 itself (~0) where mu_2 = 0."""
    m2 = _central_moment(c, 2)
    m4 = _central_moment(c, 4)
    return m4 / torch.where(m2 == 0, torch.ones_like(m2), m2) ** 2.0


def variance(c: FirstOrderCoefficients) -> torch.Tensor:
    """Variance = (1/N) sum_i (X(i) - mean(X))^2."""
    return standard_deviation(c) ** 2


def uniformity(c: FirstOrderCoefficients) -> torch.Tensor:
    """Uniformity = sum_i p(i)^2."""
    return (c.p**2).sum(1)


#: PyRadiomics feature name -> function.
FEATURES: dict[str, Callable[[FirstOrderCoefficients], torch.Tensor]] = {
    "10Percentile": percentile_10,
    "90Percentile": percentile_90,
    "Energy": energy,
    "Entropy": entropy,
    "InterquartileRange": interquartile_range,
    "Kurtosis": kurtosis,
    "Maximum": maximum,
    "Mean": mean,
    "MeanAbsoluteDeviation": mean_absolute_deviation,
    "Median": median,
    "Minimum": minimum,
    "Range": range_,
    "RobustMeanAbsoluteDeviation": robust_mean_absolute_deviation,
    "RootMeanSquared": root_mean_squared,
    "Skewness": skewness,
    "StandardDeviation": standard_deviation,
    "TotalEnergy": total_energy,
    "Uniformity": uniformity,
    "Variance": variance,
}


def compute(batch: RoiBatch, *, voxel_array_shift: float = 0.0) -> dict[str, torch.Tensor]:
    """All first-order features of the batch, name -> (B,) tensor."""
    c = coefficients(batch, voxel_array_shift)
    return {name: fn(c) for name, fn in FEATURES.items()}
