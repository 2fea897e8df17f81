"""Grey Level Co-occurrence Matrix (GLCM) features, PyRadiomics 3.1 definitions, batched over ROIs.

P(i, j | a): symmetrical co-occurrence counts of grey levels i, j between ROI voxels one step apart
along each of the 13 3-D directions a, normalised per direction: p(i, j) = P(i, j) / sum P. Features
are computed per direction and averaged over directions that have at least one pair (numpy.nanmean).
p_x(i) = sum_j p(i, j), p_y(j) = sum_i p(i, j), mu_x = sum i p(i, j), mu_y = sum j p(i, j),
p_{x+y}(k) = sum_{i+j=k} p(i, j) (k = 2..2 Ng), p_{x-y}(k) = sum_{|i-j|=k} p(i, j) (k = 0..Ng-1),
HXY = -sum p log2(p + eps), eps = numpy.spacing(1), Ng the highest grey level in the ROI. Grey levels
absent from the ROI have empty rows and columns, which contribute nothing to any sum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from radpersona.radiomics._batch import DIRECTIONS, RoiBatch, angle_mean

EPS = float(np.spacing(1))
NAN_REASON = "no pair of neighbouring ROI voxels (GLCM empty)"


@dataclass
class GlcmCoefficients:
    """Normalised matrices p (B, A, Gc, Gc) over each ROI's present grey levels, and shared marginals.

    Matrices are indexed by compact rank (the r-th grey level present in the ROI); ``i`` and ``j`` hold
    the actual grey levels of the ranks (0 for padding ranks, whose rows and columns are empty).
    """

    p: torch.Tensor
    used: torch.Tensor  # (B, A) direction has pairs
    i: torch.Tensor  # (B, 1, Gc, 1) grey levels
    j: torch.Tensor  # (B, 1, 1, Gc)
    px: torch.Tensor  # (B, A, Gc)
    py: torch.Tensor
    ux: torch.Tensor  # (B, A)
    uy: torch.Tensor
    p_sum: torch.Tensor  # (B, A, 2G + 1), k = 0..2G
    p_diff: torch.Tensor  # (B, A, G + 1), k = 0..G
    k_sum: torch.Tensor
    k_diff: torch.Tensor
    hxy: torch.Tensor  # (B, A)
    pxy: torch.Tensor  # (B, A, Gc, Gc) p_x(i) p_y(j)
    log_pxy: torch.Tensor  # log2(p_x(i) p_y(j) + eps)
    n_levels: torch.Tensor  # (B,) Ng
    n_present: np.ndarray  # (B,) number of distinct grey levels in the ROI


def cooccurrence(batch: RoiBatch) -> torch.Tensor:
    """Symmetrical co-occurrence counts (B, 13, Gc, Gc) at distance 1, over compact grey-level ranks."""
    gc = batch.n_compact
    n_dir = len(DIRECTIONS)
    nb = batch.neighbour_values("rank")[:n_dir]  # (13, N) rank + 1 of the neighbour, 0 outside the ROI
    # column 0 collects neighbours outside the ROI and is dropped (cheaper than masking the pairs)
    base = ((batch.roi_item * n_dir * gc + batch.roi_rank) * (gc + 1)).to(torch.int32)  # (N,)
    step = (torch.arange(n_dir, device=batch.device, dtype=torch.int32) * (gc * (gc + 1)))[:, None]
    key = (nb + base) + step
    counts = torch.bincount(key.reshape(-1), minlength=batch.size * n_dir * gc * (gc + 1))
    p = counts.reshape(batch.size, n_dir, gc, gc + 1)[..., 1:].to(batch.dtype)
    return p + p.transpose(2, 3)


def coefficients(batch: RoiBatch) -> GlcmCoefficients:
    """Normalised GLCMs and marginals of the batch."""
    counts = cooccurrence(batch)
    nb, na, gc, _ = counts.shape
    g = batch.max_level
    total = counts.sum((2, 3))
    used = total > 0
    p = counts / torch.where(used, total, torch.ones_like(total))[:, :, None, None]
    lv = batch.level_values  # (B, Gc) int
    lvf = lv.to(batch.dtype)
    i, j = lvf[:, None, :, None], lvf[:, None, None, :]
    px, py = p.sum(3), p.sum(2)
    pxy = px[:, :, :, None] * py[:, :, None, :]
    sum_idx = (lv[:, :, None] + lv[:, None, :]).reshape(nb, 1, gc * gc).expand(nb, na, gc * gc)
    diff_idx = (lv[:, :, None] - lv[:, None, :]).abs().reshape(nb, 1, gc * gc).expand(nb, na, gc * gc)
    flat = p.reshape(nb, na, gc * gc)
    p_sum = torch.zeros(nb, na, 2 * g + 1, dtype=p.dtype, device=p.device).scatter_add_(2, sum_idx, flat)
    p_diff = torch.zeros(nb, na, g + 1, dtype=p.dtype, device=p.device).scatter_add_(2, diff_idx, flat)
    return GlcmCoefficients(
        p=p,
        used=used,
        i=i,
        j=j,
        px=px,
        py=py,
        ux=(px * lvf[:, None, :]).sum(2),
        uy=(py * lvf[:, None, :]).sum(2),
        p_sum=p_sum,
        p_diff=p_diff,
        k_sum=torch.arange(0, 2 * g + 1, dtype=p.dtype, device=p.device),
        k_diff=torch.arange(0, g + 1, dtype=p.dtype, device=p.device),
        hxy=-(p * torch.log2(p + EPS)).sum((2, 3)),
        pxy=pxy,
        log_pxy=torch.log2(pxy + EPS),
        n_levels=batch.n_levels,
        n_present=batch.n_present,
    )


def _mean(c: GlcmCoefficients, per_angle: torch.Tensor) -> torch.Tensor:
    return angle_mean(per_angle, c.used)


def _sum_moment(c: GlcmCoefficients, order: int) -> torch.Tensor:
    """sum_{i,j} (i + j - mu_x - mu_y)^order p(i, j), grouped by k = i + j: sum_k (k - mu_x - mu_y)^order p_{x+y}(k)."""
    centre = (c.ux + c.uy)[:, :, None]
    return (c.p_sum * (c.k_sum - centre) ** order).sum(2)


def autocorrelation(c: GlcmCoefficients) -> torch.Tensor:
    """Autocorrelation = sum_{i,j} p(i, j) i j."""
    return _mean(c, (c.p * (c.i * c.j)).sum((2, 3)))


def joint_average(c: GlcmCoefficients) -> torch.Tensor:
    """JointAverage = mu_x = sum_{i,j} p(i, j) i."""
    return _mean(c, c.ux)


def cluster_prominence(c: GlcmCoefficients) -> torch.Tensor:
    """ClusterProminence = sum_{i,j} (i + j - mu_x - mu_y)^4 p(i, j)."""
    return _mean(c, _sum_moment(c, 4))


def cluster_shade(c: GlcmCoefficients) -> torch.Tensor:
    """ClusterShade = sum_{i,j} (i + j - mu_x - mu_y)^3 p(i, j)."""
    return _mean(c, _sum_moment(c, 3))


def cluster_tendency(c: GlcmCoefficients) -> torch.Tensor:
    """ClusterTendency = sum_{i,j} (i + j - mu_x - mu_y)^2 p(i, j)."""
    return _mean(c, _sum_moment(c, 2))


def contrast(c: GlcmCoefficients) -> torch.Tensor:
    """Contrast = sum_{i,j} (i - j)^2 p(i, j)."""
    return _mean(c, (c.p_diff * c.k_diff**2).sum(2))


def correlation(c: GlcmCoefficients) -> torch.Tensor:
    """Correlation = (sum p(i, j) i j - mu_x mu_y) / (sigma_x sigma_y + eps), computed as
    sum p (i - mu_x)(j - mu_y) / (sigma_x sigma_y + eps); 1 where sigma_x sigma_y = 0.
    sigma_x^2 = sum_i p_x(i) (i - mu_x)^2, and sum p (i - mu_x)(j - mu_y) =
    (sum_k p_{x+y}(k) (k - mu_x - mu_y)^2 - sigma_x^2 - sigma_y^2) / 2."""
    lv = c.i[:, :, :, 0]  # (B, 1, Gc)
    vx = (c.px * (lv - c.ux[:, :, None]) ** 2).sum(2)
    vy = (c.py * (lv - c.uy[:, :, None]) ** 2).sum(2)
    sx, sy = vx**0.5, vy**0.5
    corm = (_sum_moment(c, 2) - vx - vy) / 2
    corr = corm / (sx * sy + EPS)
    return _mean(c, torch.where(sx * sy == 0, torch.ones_like(corr), corr))


def difference_average(c: GlcmCoefficients) -> torch.Tensor:
    """DifferenceAverage = sum_k k p_{x-y}(k)."""
    return _mean(c, (c.k_diff * c.p_diff).sum(2))


def difference_entropy(c: GlcmCoefficients) -> torch.Tensor:
    """DifferenceEntropy = -sum_k p_{x-y}(k) log2(p_{x-y}(k) + eps)."""
    return _mean(c, -(c.p_diff * torch.log2(c.p_diff + EPS)).sum(2))


def difference_variance(c: GlcmCoefficients) -> torch.Tensor:
    """DifferenceVariance = sum_k (k - DA)^2 p_{x-y}(k), DA = DifferenceAverage of the direction."""
    da = (c.k_diff * c.p_diff).sum(2, keepdim=True)
    return _mean(c, (c.p_diff * (c.k_diff - da) ** 2).sum(2))


def joint_energy(c: GlcmCoefficients) -> torch.Tensor:
    """JointEnergy = sum_{i,j} p(i, j)^2."""
    return _mean(c, (c.p**2).sum((2, 3)))


def joint_entropy(c: GlcmCoefficients) -> torch.Tensor:
    """JointEntropy = HXY = -sum_{i,j} p(i, j) log2(p(i, j) + eps)."""
    return _mean(c, c.hxy)


def _hx_hy(c: GlcmCoefficients) -> tuple[torch.Tensor, torch.Tensor]:
    hx = -(c.px * torch.log2(c.px + EPS)).sum(2)
    hy = -(c.py * torch.log2(c.py + EPS)).sum(2)
    return hx, hy


def imc1(c: GlcmCoefficients) -> torch.Tensor:
    """Imc1 = (HXY - HXY1) / max(HX, HY), HXY1 = -sum p(i, j) log2(p_x(i) p_y(j) + eps); 0 if max(HX, HY) = 0."""
    hx, hy = _hx_hy(c)
    hxy1 = -(c.p * c.log_pxy).sum((2, 3))
    div = torch.maximum(hx, hy)
    value = (c.hxy - hxy1) / torch.where(div == 0, torch.ones_like(div), div)
    return _mean(c, torch.where(div == 0, torch.zeros_like(value), value))


def imc2(c: GlcmCoefficients) -> torch.Tensor:
    """Imc2 = sqrt(1 - exp(-2 (HXY2 - HXY))), HXY2 = -sum p_x(i) p_y(j) log2(p_x(i) p_y(j) + eps); 0 if HXY2 = HXY."""
    hxy2 = -(c.pxy * c.log_pxy).sum((2, 3))
    value = (1 - torch.exp(-2 * (hxy2 - c.hxy))) ** 0.5
    return _mean(c, torch.where(hxy2 == c.hxy, torch.zeros_like(value), value))


def idm(c: GlcmCoefficients) -> torch.Tensor:
    """Idm = sum_k p_{x-y}(k) / (1 + k^2)."""
    return _mean(c, (c.p_diff / (1 + c.k_diff**2)).sum(2))


def mcc(c: GlcmCoefficients) -> torch.Tensor:
    """MCC = sqrt(second largest eigenvalue of Q), Q(i, j) = sum_k p(i, k) p(j, k) / (p_x(i) p_y(k) + eps);
    1 for a ROI with a single grey level (even without neighbouring pairs, as in PyRadiomics).

    The GLCM is symmetric (p_x = p_y), so Q = D^-1 P D^-1 P with D = diag(p_x) is similar to M^2,
    M = D^-1/2 P D^-1/2 symmetric (eps only guards empty rows, whose rows of Q are 0 as those of M):
    MCC = second largest |eigenvalue| of M, from batched symmetric eigenvalues, items grouped by their
    number of present grey levels."""
    nb, na, gc, _ = c.p.shape
    out = torch.full((nb, na), float("nan"), dtype=c.p.dtype, device=c.p.device)
    if gc >= 2:
        d = torch.where(c.px > 0, c.px.clamp(min=EPS).rsqrt(), torch.zeros_like(c.px))
        m = c.p * d[:, :, :, None] * d[:, :, None, :]
        n_present = torch.as_tensor(c.n_present, device=c.p.device)
        for size in sorted(set(int(v) for v in c.n_present if v >= 2)):
            items = torch.nonzero(n_present == size).flatten()
            eig = torch.linalg.eigvalsh(m[items][:, :, :size, :size]).abs()
            out[items] = eig.sort(dim=-1).values[..., -2]
    single = torch.as_tensor(c.n_present < 2, device=c.p.device)
    value = _mean(c, out)
    return torch.where(single, torch.ones_like(value), value)


def idmn(c: GlcmCoefficients) -> torch.Tensor:
    """Idmn = sum_k p_{x-y}(k) / (1 + k^2 / Ng^2)."""
    ng = c.n_levels[:, None, None]
    return _mean(c, (c.p_diff / (1 + c.k_diff**2 / ng**2)).sum(2))


def id_(c: GlcmCoefficients) -> torch.Tensor:
    """Id = sum_k p_{x-y}(k) / (1 + k)."""
    return _mean(c, (c.p_diff / (1 + c.k_diff)).sum(2))


def idn(c: GlcmCoefficients) -> torch.Tensor:
    """Idn = sum_k p_{x-y}(k) / (1 + k / Ng)."""
    ng = c.n_levels[:, None, None]
    return _mean(c, (c.p_diff / (1 + c.k_diff / ng)).sum(2))


def inverse_variance(c: GlcmCoefficients) -> torch.Tensor:
    """InverseVariance = sum_{k >= 1} p_{x-y}(k) / k^2."""
    return _mean(c, (c.p_diff[:, :, 1:] / c.k_diff[1:] ** 2).sum(2))


def maximum_probability(c: GlcmCoefficients) -> torch.Tensor:
    """MaximumProbability = max_{i,j} p(i, j)."""
    return _mean(c, c.p.amax((2, 3)))


def sum_average(c: GlcmCoefficients) -> torch.Tensor:
    """SumAverage = sum_k k p_{x+y}(k)."""
    return _mean(c, (c.k_sum * c.p_sum).sum(2))


def sum_entropy(c: GlcmCoefficients) -> torch.Tensor:
    """SumEntropy = -sum_k p_{x+y}(k) log2(p_{x+y}(k) + eps)."""
    return _mean(c, -(c.p_sum * torch.log2(c.p_sum + EPS)).sum(2))


def sum_squares(c: GlcmCoefficients) -> torch.Tensor:
    """SumSquares = sum_{i,j} (i - mu_x)^2 p(i, j)."""
    return _mean(c, (c.px * (c.i[:, :, :, 0] - c.ux[:, :, None]) ** 2).sum(2))


#: PyRadiomics feature name -> function.
FEATURES: dict[str, Callable[[GlcmCoefficients], torch.Tensor]] = {
    "Autocorrelation": autocorrelation,
    "ClusterProminence": cluster_prominence,
    "ClusterShade": cluster_shade,
    "ClusterTendency": cluster_tendency,
    "Contrast": contrast,
    "Correlation": correlation,
    "DifferenceAverage": difference_average,
    "DifferenceEntropy": difference_entropy,
    "DifferenceVariance": difference_variance,
    "Id": id_,
    "Idm": idm,
    "Idmn": idmn,
    "Idn": idn,
    "Imc1": imc1,
    "Imc2": imc2,
    "InverseVariance": inverse_variance,
    "JointAverage": joint_average,
    "JointEnergy": joint_energy,
    "JointEntropy": joint_entropy,
    "MCC": mcc,
    "MaximumProbability": maximum_probability,
    "SumAverage": sum_average,
    "SumEntropy": sum_entropy,
    "SumSquares": sum_squares,
}


def compute(batch: RoiBatch, *, voxel_array_shift: float = 0.0) -> dict[str, torch.Tensor]:
    """All GLCM features of the batch, name -> (B,) tensor (``voxel_array_shift`` is unused)."""
    c = coefficients(batch)
    return {name: fn(c) for name, fn in FEATURES.items()}
