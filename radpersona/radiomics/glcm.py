"""Grey Level Co-occurrence Matrix (GLCM) features, PyRadiomics 3.1 definitions, batched over ROIs.

P(i, j | a): symmetrical co-occurrence counts of grey levels i, j between ROI voxels one step apart
along each of the 13 3-D directions a, normalised per direction: p(i, j) = P(i, j) / sum P. Every feature
function below gives the value per direction; :func:`compute` averages over the directions that have at least
one pair (numpy.nanmean), except that MCC is 1 for a ROI with a single grey level even without any pair.
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

from radpersona.radiomics._batch import DIRECTIONS, RoiBatch, angle_mean, group_sizes

EPS = float(np.spacing(1))
NAN_REASON = "no pair of neighbouring ROI voxels (GLCM empty)"


@dataclass
class GlcmCoefficients:
    """Normalised matrices p (B, A, n, n) of a group of items, over each ROI's present grey levels, and shared
    marginals and entropies.

    Matrices are indexed by compact rank (the r-th grey level present in the ROI), padded to the group's
    size n; ``i`` and ``j`` hold the actual grey levels of the ranks (0 for padding ranks, whose rows and
    columns are empty). The matrices are symmetrical, so p_y = p_x and mu_y = mu_x.
    """

    p: torch.Tensor
    used: torch.Tensor  # (B, A) direction has pairs
    i: torch.Tensor  # (B, 1, n, 1) grey levels
    j: torch.Tensor  # (B, 1, 1, n)
    px: torch.Tensor  # (B, A, n) = p_y
    ux: torch.Tensor  # (B, A) = mu_y
    p_sum: torch.Tensor  # (B, A, 2G + 1), k = 0..2G
    p_diff: torch.Tensor  # (B, A, G + 1), k = 0..G
    k_sum: torch.Tensor
    k_diff: torch.Tensor
    hxy: torch.Tensor  # (B, A) HXY
    hxy1: torch.Tensor  # (B, A) HXY1 = -sum p(i, j) log2(p_x(i) p_y(j) + eps)
    hxy2: torch.Tensor  # (B, A) HXY2 = -sum p_x(i) p_y(j) log2(p_x(i) p_y(j) + eps)
    n_levels: torch.Tensor  # (B,) Ng
    n_present: np.ndarray  # (B,) number of distinct grey levels in the ROI


def cooccurrence(batch: RoiBatch, size: np.ndarray, order: np.ndarray) -> torch.Tensor:
    """(13, S) co-occurrence counts at distance 1 over compact grey-level ranks, per direction: items one after
    another in ``order``, item b a block (size[b], size[b] + 1) of counts P(rank, neighbour rank + 1), column 0
    collecting neighbours outside the ROI (cheaper than masking those pairs); S = sum size (size + 1)."""
    n_dir = len(DIRECTIONS)
    block = size * (size + 1)
    offset = np.zeros(batch.size, dtype=np.int64)
    offset[order] = np.cumsum(block[order]) - block[order]
    total = int(block.sum())
    index_dtype = torch.int32 if n_dir * total < 2**31 else torch.int64
    nb = batch.neighbour_values("rank")  # (13, N) rank + 1 of the neighbour, 0 outside the ROI
    width = batch.per_voxel(torch.as_tensor(size + 1, device=batch.device))
    base = batch.per_voxel(torch.as_tensor(offset, device=batch.device)) + batch.roi_rank * width  # (N,)
    key = nb.to(index_dtype) + base.to(index_dtype)
    key += torch.arange(0, n_dir * total, total, device=batch.device, dtype=index_dtype)[:, None]
    return torch.bincount(key.reshape(-1), minlength=n_dir * total).reshape(n_dir, total)


def coefficients(batch: RoiBatch, counts: torch.Tensor, items: np.ndarray, start: int, n: int) -> GlcmCoefficients:
    """Normalised GLCMs, marginals and entropies of the group ``items`` (padded size n), whose count blocks
    follow each other in every direction's row of ``counts`` from column ``start``."""
    nb, na = len(items), len(DIRECTIONS)
    block = counts[:, start : start + nb * n * (n + 1)].reshape(na, nb, n, n + 1)[..., 1:].transpose(0, 1)
    P = block.to(batch.dtype, memory_format=torch.contiguous_format)
    P = P + P.transpose(2, 3)
    total = P.sum((2, 3))
    used = total > 0
    p = P / torch.where(used, total, torch.ones_like(total))[:, :, None, None]
    idx = torch.as_tensor(items, device=p.device)
    lv = batch.level_values[idx, :n]  # n <= Gc
    lvf = lv.to(batch.dtype)
    px = p.sum(3)
    pxy = px[:, :, :, None] * px[:, :, None, :]
    log_pxy = torch.log2(pxy + EPS)
    g = batch.max_level
    flat = p.reshape(nb, na, n * n)
    sum_idx = (lv[:, :, None] + lv[:, None, :]).reshape(nb, 1, n * n).expand(nb, na, n * n)
    diff_idx = (lv[:, :, None] - lv[:, None, :]).abs().reshape(nb, 1, n * n).expand(nb, na, n * n)
    p_sum = torch.zeros(nb, na, 2 * g + 1, dtype=p.dtype, device=p.device).scatter_add_(2, sum_idx, flat)
    p_diff = torch.zeros(nb, na, g + 1, dtype=p.dtype, device=p.device).scatter_add_(2, diff_idx, flat)
    flat_log = log_pxy.reshape(nb, na, n * n)
    return GlcmCoefficients(
        p=p,
        used=used,
        i=lvf[:, None, :, None],
        j=lvf[:, None, None, :],
        px=px,
        ux=(px * lvf[:, None, :]).sum(2),
        p_sum=p_sum,
        p_diff=p_diff,
        k_sum=torch.arange(0, 2 * g + 1, dtype=p.dtype, device=p.device),
        k_diff=torch.arange(0, g + 1, dtype=p.dtype, device=p.device),
        hxy=-torch.linalg.vecdot(flat, torch.log2(flat + EPS)),
        hxy1=-torch.linalg.vecdot(flat, flat_log),
        hxy2=-torch.linalg.vecdot(pxy.reshape(nb, na, n * n), flat_log),
        n_levels=batch.n_levels[idx],
        n_present=batch.n_present[items],
    )


def _sum_moment(c: GlcmCoefficients, order: int) -> torch.Tensor:
    """sum_{i,j} (i + j - mu_x - mu_y)^order p(i, j), grouped by k = i + j: sum_k (k - mu_x - mu_y)^order p_{x+y}(k)."""
    centre = c.k_sum - 2 * c.ux[:, :, None]
    square = centre * centre
    power = centre if order % 2 else square
    for _ in range((order - 1) // 2 if order % 2 else order // 2 - 1):
        power = power * square
    return (c.p_sum * power).sum(2)


def autocorrelation(c: GlcmCoefficients) -> torch.Tensor:
    """Autocorrelation = sum_{i,j} p(i, j) i j (as sum_i i sum_j p(i, j) j)."""
    row = (c.p @ c.j[:, :, 0, :, None])[..., 0]  # (B, A, n): sum_j p(i, j) j
    return (row * c.i[:, :, :, 0]).sum(2)


def joint_average(c: GlcmCoefficients) -> torch.Tensor:
    """JointAverage = mu_x = sum_{i,j} p(i, j) i."""
    return c.ux


def cluster_prominence(c: GlcmCoefficients) -> torch.Tensor:
    """ClusterProminence = sum_{i,j} (i + j - mu_x - mu_y)^4 p(i, j)."""
    return _sum_moment(c, 4)


def cluster_shade(c: GlcmCoefficients) -> torch.Tensor:
    """ClusterShade = sum_{i,j} (i + j - mu_x - mu_y)^3 p(i, j)."""
    return _sum_moment(c, 3)


def cluster_tendency(c: GlcmCoefficients) -> torch.Tensor:
    """ClusterTendency = sum_{i,j} (i + j - mu_x - mu_y)^2 p(i, j)."""
    return _sum_moment(c, 2)


def contrast(c: GlcmCoefficients) -> torch.Tensor:
    """Contrast = sum_{i,j} (i - j)^2 p(i, j)."""
    return (c.p_diff * c.k_diff**2).sum(2)


def correlation(c: GlcmCoefficients) -> torch.Tensor:
    """Correlation = (sum p(i, j) i j - mu_x mu_y) / (sigma_x sigma_y + eps), computed as
    sum p (i - mu_x)(j - mu_y) / (sigma_x sigma_y + eps); 1 where sigma_x sigma_y = 0.
    sigma_x^2 = sum_i p_x(i) (i - mu_x)^2, and sum p (i - mu_x)(j - mu_y) =
    (sum_k p_{x+y}(k) (k - mu_x - mu_y)^2 - sigma_x^2 - sigma_y^2) / 2."""
    lv = c.i[:, :, :, 0]  # (B, 1, n)
    vx = (c.px * (lv - c.ux[:, :, None]) ** 2).sum(2)  # = sigma_y^2 (symmetrical GLCM)
    sxy = vx  # sigma_x sigma_y
    corm = (_sum_moment(c, 2) - vx - vx) / 2
    corr = corm / (sxy + EPS)
    return torch.where(sxy == 0, torch.ones_like(corr), corr)


def difference_average(c: GlcmCoefficients) -> torch.Tensor:
    """DifferenceAverage = sum_k k p_{x-y}(k)."""
    return (c.k_diff * c.p_diff).sum(2)


def difference_entropy(c: GlcmCoefficients) -> torch.Tensor:
    """DifferenceEntropy = -sum_k p_{x-y}(k) log2(p_{x-y}(k) + eps)."""
    return -(c.p_diff * torch.log2(c.p_diff + EPS)).sum(2)


def difference_variance(c: GlcmCoefficients) -> torch.Tensor:
    """DifferenceVariance = sum_k (k - DA)^2 p_{x-y}(k), DA = DifferenceAverage of the direction."""
    da = (c.k_diff * c.p_diff).sum(2, keepdim=True)
    return (c.p_diff * (c.k_diff - da) ** 2).sum(2)


def joint_energy(c: GlcmCoefficients) -> torch.Tensor:
    """JointEnergy = sum_{i,j} p(i, j)^2."""
    return torch.linalg.vecdot(c.p.flatten(2), c.p.flatten(2))


def joint_entropy(c: GlcmCoefficients) -> torch.Tensor:
    """JointEntropy = HXY = -sum_{i,j} p(i, j) log2(p(i, j) + eps)."""
    return c.hxy


def imc1(c: GlcmCoefficients) -> torch.Tensor:
    """Imc1 = (HXY - HXY1) / max(HX, HY), HXY1 = -sum p(i, j) log2(p_x(i) p_y(j) + eps); 0 if max(HX, HY) = 0."""
    div = -(c.px * torch.log2(c.px + EPS)).sum(2)  # HX = HY (symmetrical GLCM)
    value = (c.hxy - c.hxy1) / torch.where(div == 0, torch.ones_like(div), div)
    return torch.where(div == 0, torch.zeros_like(value), value)


def imc2(c: GlcmCoefficients) -> torch.Tensor:
    """Imc2 = sqrt(1 - exp(-2 (HXY2 - HXY))), HXY2 = -sum p_x(i) p_y(j) log2(p_x(i) p_y(j) + eps); 0 if HXY2 = HXY."""
    value = (1 - torch.exp(-2 * (c.hxy2 - c.hxy))) ** 0.5
    return torch.where(c.hxy2 == c.hxy, torch.zeros_like(value), value)


def idm(c: GlcmCoefficients) -> torch.Tensor:
    """Idm = sum_k p_{x-y}(k) / (1 + k^2)."""
    return (c.p_diff / (1 + c.k_diff**2)).sum(2)


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
        for size in np.unique(c.n_present[c.n_present >= 2]).tolist():
            items = torch.as_tensor(np.flatnonzero(c.n_present == size), device=c.p.device)
            eig = torch.linalg.eigvalsh(m[items, :, :size, :size]).abs()
            out[items] = eig.sort(dim=-1).values[..., -2]
    single = torch.as_tensor(c.n_present < 2, device=c.p.device)
    return torch.where(single[:, None], torch.ones_like(out), out)


def idmn(c: GlcmCoefficients) -> torch.Tensor:
    """Idmn = sum_k p_{x-y}(k) / (1 + k^2 / Ng^2)."""
    ng = c.n_levels[:, None, None]
    return (c.p_diff / (1 + c.k_diff**2 / ng**2)).sum(2)


def id_(c: GlcmCoefficients) -> torch.Tensor:
    """Id = sum_k p_{x-y}(k) / (1 + k)."""
    return (c.p_diff / (1 + c.k_diff)).sum(2)


def idn(c: GlcmCoefficients) -> torch.Tensor:
    """Idn = sum_k p_{x-y}(k) / (1 + k / Ng)."""
    ng = c.n_levels[:, None, None]
    return (c.p_diff / (1 + c.k_diff / ng)).sum(2)


def inverse_variance(c: GlcmCoefficients) -> torch.Tensor:
    """InverseVariance = sum_{k >= 1} p_{x-y}(k) / k^2."""
    return (c.p_diff[:, :, 1:] / c.k_diff[1:] ** 2).sum(2)


def maximum_probability(c: GlcmCoefficients) -> torch.Tensor:
    """MaximumProbability = max_{i,j} p(i, j)."""
    return c.p.flatten(2).amax(2)


def sum_average(c: GlcmCoefficients) -> torch.Tensor:
    """SumAverage = sum_k k p_{x+y}(k)."""
    return (c.k_sum * c.p_sum).sum(2)


def sum_entropy(c: GlcmCoefficients) -> torch.Tensor:
    """SumEntropy = -sum_k p_{x+y}(k) log2(p_{x+y}(k) + eps)."""
    return -(c.p_sum * torch.log2(c.p_sum + EPS)).sum(2)


def sum_squares(c: GlcmCoefficients) -> torch.Tensor:
    """SumSquares = sum_{i,j} (i - mu_x)^2 p(i, j)."""
    return (c.px * (c.i[:, :, :, 0] - c.ux[:, :, None]) ** 2).sum(2)


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
    """All GLCM features of the batch, name -> (B,) tensor (``voxel_array_shift`` is unused), computed per group of
    items of similar grey-level counts (:func:`group_sizes`) on matrices of the group's size."""
    size = group_sizes(batch.n_present)
    order = np.lexsort((np.arange(batch.size), -size))  # groups one after another, largest first
    counts = cooccurrence(batch, size, order)
    out = torch.empty(batch.size, len(FEATURES), dtype=batch.dtype, device=batch.device)
    start = 0
    for n in np.unique(size)[::-1].tolist():
        items = order[size[order] == n]
        c = coefficients(batch, counts, items, start, n)
        per_angle = torch.stack([fn(c) for fn in FEATURES.values()], dim=1)  # (B, F, A)
        out[torch.as_tensor(items, device=batch.device)] = angle_mean(per_angle, c.used[:, None, :], dim=2)
        start += len(items) * n * (n + 1)
    single = torch.as_tensor(batch.n_present < 2, device=batch.device)
    mcc_col = list(FEATURES).index("MCC")
    out[:, mcc_col] = torch.where(single, torch.ones_like(out[:, mcc_col]), out[:, mcc_col])
    return dict(zip(FEATURES, out.unbind(1)))
