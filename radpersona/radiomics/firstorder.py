"""First-order (intensity histogram) features, PyRadiomics 3.1 definitions, batched over ROIs.

Notation: X the N intensities of the ROI, c = voxelArrayShift, p(i) the fraction of ROI voxels in
grey level i after fixed-bin-width discretisation, V_vox the voxel volume in mm^3, eps =
numpy.spacing(1). Percentiles use numpy's default linear interpolation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from radpersona.radiomics._batch import RoiBatch

EPS = float(np.spacing(1))


@dataclass
class FirstOrderCoefficients:
    """Per-item moments, the discretised histogram and sorted intensities, shared by the first-order features.

    All are (B,) tensors except ``p`` (B, G) and ``sorted_x`` (B, N_max), sorted ascending and +inf-padded.
    Sums run over each item's voxels in the batch's ROI voxel lists (:meth:`RoiBatch.segment_sum`).
    """

    n: torch.Tensor  # voxel count
    mean: torch.Tensor
    m2: torch.Tensor  # central moments mu_k = (1/N) sum (X - mean)^k
    m3: torch.Tensor
    m4: torch.Tensor
    mad: torch.Tensor  # (1/N) sum |X - mean|
    energy: torch.Tensor  # sum (X + c)^2
    p: torch.Tensor
    sorted_x: torch.Tensor
    voxel_volume: float
    x: torch.Tensor  # (N,) intensities
    batch: RoiBatch
    _percentiles: dict = field(default_factory=dict, repr=False)


def coefficients(batch: RoiBatch, voxel_array_shift: float) -> FirstOrderCoefficients:
    """Moments, histogram and sorted intensities of the batch, one pass each over the ROI voxel lists."""
    x = batch.roi_values
    n = batch.n_voxels.to(x.dtype)
    mean = batch.segment_sum(x) / n
    d = x - batch.per_voxel(mean)
    d2 = d * d
    shifted = x + voxel_array_shift if voxel_array_shift else x
    g = batch.max_level
    counts = torch.bincount(batch.roi_item * g + (batch.roi_grey - 1), minlength=batch.size * g)
    return FirstOrderCoefficients(
        n=n,
        mean=mean,
        m2=batch.segment_sum(d2) / n,
        m3=batch.segment_sum(d2 * d) / n,
        m4=batch.segment_sum(d2 * d2) / n,
        mad=batch.segment_sum(d.abs()) / n,
        energy=batch.segment_sum(shifted * shifted),
        p=counts.reshape(batch.size, g).to(x.dtype) / n[:, None],
        sorted_x=_sorted(batch),
        voxel_volume=float(np.prod(batch.spacing)),
        x=x,
        batch=batch,
    )


def _sorted(batch: RoiBatch) -> torch.Tensor:
    """(B, N_max) each item's intensities sorted ascending, +inf-padded (numpy's sort on the CPU, torch's elsewhere).

    On the CPU, runs of consecutive items with one voxel count (e.g. patches of one shape) are sorted as a
    (run, count) block each, without padding, when there are few runs."""
    nb, n_max = batch.size, int(batch.counts.max())
    if batch.on_cpu:
        change = np.flatnonzero(np.diff(batch.counts)) + 1
        if len(change) < 32:
            values = batch.roi_values.numpy()
            dense_np = np.full((nb, n_max), np.inf, dtype=values.dtype)
            for b0, b1 in zip([0, *change.tolist()], [*change.tolist(), nb]):
                count, first = int(batch.counts[b0]), int(batch.starts[b0])
                block = values[first : first + (b1 - b0) * count].reshape(b1 - b0, count)
                dense_np[b0:b1, :count] = np.sort(block, axis=1)
            return torch.from_numpy(dense_np)
    if bool((batch.counts == n_max).all()):
        dense = batch.roi_values.reshape(nb, n_max)
    else:
        pos = torch.arange(batch.roi_values.shape[0], device=batch.device) - batch.per_voxel(
            torch.as_tensor(batch.starts, device=batch.device)
        )
        dense = torch.full((nb * n_max,), float("inf"), dtype=batch.dtype, device=batch.device)
        dense[batch.roi_item * n_max + pos] = batch.roi_values
        dense = dense.reshape(nb, n_max)
    if batch.on_cpu:
        return torch.from_numpy(np.sort(dense.numpy(), axis=1))
    return dense.sort(dim=1).values


def _percentile(c: FirstOrderCoefficients, q: float) -> torch.Tensor:
    """numpy.percentile's default (linear) method on each item's sorted intensities (cached per q)."""
    if q not in c._percentiles:
        h = (c.n - 1) * (q / 100.0)
        lo = h.floor()
        t = h - lo
        lo_i = lo.long()
        hi_i = torch.minimum(lo_i + 1, c.n.long() - 1)
        a = c.sorted_x.gather(1, lo_i[:, None])[:, 0]
        b = c.sorted_x.gather(1, hi_i[:, None])[:, 0]
        diff = b - a
        c._percentiles[q] = torch.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
    return c._percentiles[q]


def energy(c: FirstOrderCoefficients) -> torch.Tensor:
    """Energy = sum_{i=1..N} (X(i) + c)^2."""
    return c.energy


def total_energy(c: FirstOrderCoefficients) -> torch.Tensor:
    """TotalEnergy = V_vox * sum_{i=1..N} (X(i) + c)^2."""
    return c.energy * c.voxel_volume


def entropy(c: FirstOrderCoefficients) -> torch.Tensor:
    """Entropy = -sum_i p(i) log2(p(i) + eps)."""
    return -(c.p * torch.log2(c.p + EPS)).sum(1)


def minimum(c: FirstOrderCoefficients) -> torch.Tensor:
    """Minimum = min(X)."""
    return c.sorted_x[:, 0]


def percentile_10(c: FirstOrderCoefficients) -> torch.Tensor:
    """10Percentile = P10(X), linear interpolation between order statistics (numpy default)."""
    return _percentile(c, 10)


def percentile_90(c: FirstOrderCoefficients) -> torch.Tensor:
    """90Percentile = P90(X), linear interpolation between order statistics (numpy default)."""
    return _percentile(c, 90)


def maximum(c: FirstOrderCoefficients) -> torch.Tensor:
    """Maximum = max(X)."""
    return c.sorted_x.gather(1, c.n.long()[:, None] - 1)[:, 0]


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
    return c.mad


def robust_mean_absolute_deviation(c: FirstOrderCoefficients) -> torch.Tensor:
    """RobustMeanAbsoluteDeviation = (1/N_1090) sum_{i: P10 <= X(i) <= P90} |X(i) - mean(X_1090)|."""
    batch = c.batch
    keep = (c.x >= batch.per_voxel(_percentile(c, 10))) & (c.x <= batch.per_voxel(_percentile(c, 90)))
    weight = keep.to(c.x.dtype)  # 0/1 weights: cheaper than selecting (intensities are finite)
    n = batch.segment_sum(weight)
    m = batch.segment_sum(c.x * weight) / n
    return batch.segment_sum((c.x - batch.per_voxel(m)).abs() * weight) / n


def root_mean_squared(c: FirstOrderCoefficients) -> torch.Tensor:
    """RootMeanSquared = sqrt((1/N) sum_i (X(i) + c)^2)."""
    return torch.sqrt(c.energy / c.n)


def standard_deviation(c: FirstOrderCoefficients) -> torch.Tensor:
    """StandardDeviation = sqrt((1/N) sum_i (X(i) - mean(X))^2) (deprecated in PyRadiomics, kept here)."""
    return torch.sqrt(c.m2)


def skewness(c: FirstOrderCoefficients) -> torch.Tensor:
    """Skewness = mu_3 / mu_2^(3/2), mu_k = (1/N) sum_i (X(i) - mean)^k; mu_3 itself (~0) where mu_2 = 0."""
    return c.m3 / torch.where(c.m2 == 0, torch.ones_like(c.m2), c.m2) ** 1.5


def kurtosis(c: FirstOrderCoefficients) -> torch.Tensor:
    """Kurtosis = mu_4 / mu_2^2 (not excess kurtosis); mu_4 itself (~0) where mu_2 = 0."""
    return c.m4 / torch.where(c.m2 == 0, torch.ones_like(c.m2), c.m2) ** 2.0


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
