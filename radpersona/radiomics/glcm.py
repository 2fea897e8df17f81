"""Grey Level Co-occurrence Matrix (GLCM) features, PyRadiomics 3.1 definitions, batched over ROIs.

P(i, j | a): symmetrical co-occurrence counts of grey levels i, j between ROI voxels one step apart
along each of the 13 3-D directions a, normalised per direction: p(i, j) = P(i, j) / sum P. Every feature
function below gives the value per direction; :func:`compute` averages over the directions that have at least
one pair (numpy.nanmean), except that MCC is 1 for a ROI with a single grey level even without any pair.
p_x(i) = sum_j p(i, j), p_y(j) = sum_i p(i, j), mu_x = sum i p(i, j), mu_y = sum j p(i, j),
p_{x+y}(k) = sum_{i+j=k} p(i, j) (k = 2..2 Ng), p_{x-y}(k) = sum_{|i-j|=k} p(i, j) (k = 0..Ng-1),
HXY = -sum p log2(p + eps), eps = numpy.spacing(1), Ng the highest grey level in the ROI. Grey levels
absent from the ROI have empty rows and columns, which contribute nothing to any sum.

The eps inside the logarithms of the joint entropies (HXY, HX, HY, HXY1, HXY2) moves each of them by at most
(number of cells) * eps / ln 2 (~1e-13), so they are taken without it (0 log 0 = 0); then HXY1 = HXY2 = HX + HY
exactly (p_x = p_y, and each sums to 1), which spares the matrix of p_x(i) p_y(j) and its logarithm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from radpersona.radiomics._batch import DIRECTIONS, RoiBatch, angle_mean, group_sizes

EPS = float(np.spacing(1))
LN2 = float(np.log(2.0))
NAN_REASON = "no pair of neighbouring ROI voxels (GLCM empty)"


@dataclass
class GlcmCoefficients:
    """Per-direction marginals and sums of the normalised matrices p of every item of a batch.

    The matrices are indexed by compact rank (the r-th grey level present in the ROI); ``i`` holds the actual
    grey levels of the ranks (0 for padding ranks, whose rows and columns are empty). They are symmetrical, so
    p_y = p_x and mu_y = mu_x. The sums that need the whole matrix are taken in :func:`coefficients`, group by
    group (:func:`matrix_sums`); everything here is per item and direction.
    """

    used: torch.Tensor  # (B, A) direction has pairs
    i: torch.Tensor  # (B, 1, Gc) grey levels of the ranks
    px: torch.Tensor  # (B, A, Gc) = p_y
    ux: torch.Tensor  # (B, A) = mu_y
    p_sum: torch.Tensor  # (B, A, 2G + 1), k = 0..2G
    p_diff: torch.Tensor  # (B, A, G + 1), k = 0..G
    k_sum: torch.Tensor
    k_diff: torch.Tensor
    hxy: torch.Tensor  # (B, A) HXY = -sum p log2 p
    hx: torch.Tensor  # (B, A) HX = HY = -sum p_x log2 p_x
    sum_p2: torch.Tensor  # (B, A) sum p(i, j)^2
    max_p: torch.Tensor  # (B, A) max p(i, j)
    eig2: torch.Tensor  # (B, A) second largest |eigenvalue| of D^-1/2 P D^-1/2 (see :func:`mcc`), NaN if n < 2
    n_levels: torch.Tensor  # (B,) Ng
    n_present: np.ndarray  # (B,) number of distinct grey levels in the ROI
    _cache: dict = field(default_factory=dict, init=False, repr=False)  # sums shared by several features


def cooccurrence(batch: RoiBatch, size: np.ndarray, order: np.ndarray) -> torch.Tensor:
    """(13, S) co-occurrence counts at distance 1 over compact grey-level ranks, per direction: items one after
    another in ``order``, item b a block (size[b], size[b]) of counts P(neighbour rank, rank), S = sum size^2.

    Counted from every ROI voxel v to its neighbour w = v + step, keyed by w's cell (its item's block offset +
    its rank * size, gathered from a flat array that holds a trash cell outside the ROI) plus v's rank. That is
    the transposed matrix, which the symmetrical GLCM (P + P^T) does not tell apart.
    """
    n_dir = len(DIRECTIONS)
    block = size * size
    offset = np.zeros(batch.size, dtype=np.int64)
    offset[order] = np.cumsum(block[order]) - block[order]
    total = int(block.sum())
    stride = total + batch.n_compact  # per direction: the blocks, then trash cells for neighbours outside the ROI
    index_dtype = torch.int32 if n_dir * stride < 2**31 else torch.int64
    cell = batch.per_voxel(torch.as_tensor(offset, device=batch.device)) + batch.roi_rank * batch.per_voxel(
        torch.as_tensor(size, device=batch.device)
    )
    if batch.on_cpu:  # numpy's scatter is much faster than torch's on the CPU
        flat = np.full(batch.rank_flat.shape[0], total, dtype=np.int32 if index_dtype == torch.int32 else np.int64)
        flat[batch.roi_index.numpy()] = cell.numpy().astype(flat.dtype)
        cell_flat = torch.from_numpy(flat)
    else:
        cell_flat = torch.full(batch.rank_flat.shape, total, dtype=index_dtype, device=batch.device)
        cell_flat[batch.roi_index] = cell.to(index_dtype)
    rank = batch.roi_rank.to(index_dtype)
    steps = [batch.flat_offset(d) for d in DIRECTIONS]
    if batch.on_cpu:
        src, roi, own = cell_flat.numpy(), batch.roi_index.numpy(), rank.numpy()
        key_np = np.empty((n_dir, len(roi)), dtype=src.dtype)
        for a, (row, step) in enumerate(zip(key_np, steps)):
            # the neighbour's cell; mode="clip" (indices are in range) lets numpy write into ``out`` unbuffered
            np.take(src[step:], roi, out=row, mode="clip")
            row += own  # in place: no temporary per direction
            row += a * stride
        key = torch.from_numpy(key_np)
    else:
        shift = torch.tensor(steps, dtype=torch.int64, device=batch.device)[:, None]
        key = cell_flat[batch.roi_index[None, :] + shift] + rank[None, :]
        key += torch.arange(0, n_dir * stride, stride, dtype=index_dtype, device=batch.device)[:, None]
    counts = torch.bincount(key.reshape(-1), minlength=n_dir * stride)
    return counts.reshape(n_dir, stride)[:, :total]


_K_LOG2_K: dict[str, torch.Tensor] = {}  # k log2 k for k = 0, 1, ..., per device


def _sum_k_log2_k(counts: torch.Tensor) -> torch.Tensor:
    """Sum over the last two dimensions of k log2 k (0 for k = 0) of non-negative integer ``counts``, from a table of
    k log2 k (kept per device and grown on demand)."""
    device = str(counts.device)
    table = _K_LOG2_K.get(device)
    size = int(counts.max()) + 1
    if table is None or len(table) < size:
        k = np.arange(max(size, 4096, 2 * len(table) if table is not None else 0), dtype=np.float64)
        table = _K_LOG2_K[device] = torch.as_tensor(k * np.log2(np.maximum(k, 1.0)), device=counts.device)
    if counts.device.type == "cpu":
        return torch.from_numpy(np.take(table.numpy(), counts.numpy()).sum((-2, -1)))
    return torch.take(table, counts).sum((-2, -1))


def matrix_sums(batch: RoiBatch, counts: torch.Tensor, items: np.ndarray, start: int, n: int) -> dict:
    """Marginals and whole-matrix sums (see :class:`GlcmCoefficients`) of the group ``items``, whose count blocks,
    padded to size n, follow each other in every direction's row of ``counts`` from column ``start``. The work runs
    direction-major (the layout of ``counts``); results are (B, A, ...)."""
    nb, na = len(items), len(DIRECTIONS)
    block = counts[:, start : start + nb * n * n].reshape(na, nb, n, n)
    counts_sym = block + block.transpose(2, 3)  # symmetrical counts S, (A, B, n, n), integers
    sym = counts_sym.to(batch.dtype)  # exact; floating arithmetic vectorises better than 64-bit integers
    total = sym.sum((2, 3))
    used = total > 0
    safe_total = torch.where(used, total, torch.ones_like(total))
    scale = 1.0 / safe_total  # p = S / N (divisions below where an exact 1 matters, e.g. a single grey level)
    largest = sym.flatten(2).amax(2)
    # HXY = -sum p log2 p = log2 N - (1/N) sum S log2 S, N = sum S, from a table of k log2 k; exactly 0 where one
    # cell holds every pair (a single grey level in that direction), as HX then is
    hxy = (torch.log2(safe_total) - _sum_k_log2_k(counts_sym) * scale).to(batch.dtype)
    hxy = torch.where(largest == total, torch.zeros_like(hxy), hxy)
    idx = torch.as_tensor(items, device=sym.device)
    lv = batch.level_values[idx, :n]  # n <= Gc
    lvf = lv.to(batch.dtype)
    px = sym.sum(3) / safe_total[:, :, None]  # (A, B, n); sums of integers first, exact
    flat = sym.reshape(na, nb, n * n)
    g = batch.max_level
    sum_idx = (lv[:, :, None] + lv[:, None, :]).reshape(1, nb, n * n).expand(na, nb, n * n)
    diff_idx = (lv[:, :, None] - lv[:, None, :]).abs().reshape(1, nb, n * n).expand(na, nb, n * n)
    # MCC: second largest |eigenvalue| of M = D^-1/2 P D^-1/2, per number of grey levels (items of one number
    # follow each other, see :func:`coefficients`); the largest is 1 (Perron), so the second largest |eigenvalue|
    # is max(lambda_(n-1), -lambda_1) of the ascending eigenvalues. M = S e_i e_j with e = sqrt(1 / N) D^-1/2.
    eig2 = torch.full((na, nb), float("nan"), dtype=batch.dtype, device=sym.device)
    n_present = batch.n_present[items]
    if n >= 2:
        e = torch.where(px > 0, px.clamp(min=EPS).rsqrt(), torch.zeros_like(px)) * scale.sqrt()[:, :, None]
        for size in np.unique(n_present[n_present >= 2]).tolist():
            rows = np.flatnonzero(n_present == size)
            r0, r1 = int(rows[0]), int(rows[-1]) + 1
            ee = e[:, r0:r1, :size]
            m = sym[:, r0:r1, :size, :size] * ee[:, :, :, None] * ee[:, :, None, :]
            eig = torch.linalg.eigvalsh(m)
            eig2[:, r0:r1] = torch.maximum(eig[..., -2], -eig[..., 0])
    to: dict[str, Any] = {"dtype": sym.dtype, "device": sym.device}
    out = dict(
        used=used,
        px=px,
        ux=(px * lvf[None, :, :]).sum(2),
        p_sum=torch.zeros(na, nb, 2 * g + 1, **to).scatter_add_(2, sum_idx, flat) / safe_total[:, :, None],
        p_diff=torch.zeros(na, nb, g + 1, **to).scatter_add_(2, diff_idx, flat) / safe_total[:, :, None],
        hxy=hxy,
        hx=-torch.special.xlogy(px, px).sum(2) / LN2,
        sum_p2=(flat * flat).sum(2) / (safe_total * safe_total),
        max_p=largest / safe_total,
        eig2=eig2,
    )
    return {key: value.transpose(0, 1) for key, value in out.items()}


def coefficients(batch: RoiBatch) -> GlcmCoefficients:
    """Marginals and sums of the batch's GLCMs, computed per group of items of similar grey-level counts
    (:func:`group_sizes`) on matrices of the group's size."""
    size = group_sizes(batch.n_present)
    # groups one after another, largest first; in a group, items of one number of grey levels together
    order = np.lexsort((np.arange(batch.size), -batch.n_present, -size))
    counts = cooccurrence(batch, size, order)
    gc, g = batch.n_compact, batch.max_level
    to: dict[str, Any] = {"dtype": batch.dtype, "device": batch.device}
    parts: dict[str, list[torch.Tensor]] = {}  # per key, the groups' results (items in ``order``)
    start = 0
    for n in np.unique(size)[::-1].tolist():
        items = order[size[order] == n]
        for key, value in matrix_sums(batch, counts, items, start, n).items():
            if key == "px" and n < gc:
                value = torch.nn.functional.pad(value, (0, gc - n))
            parts.setdefault(key, []).append(value)
        start += len(items) * n * n
    inverse = torch.as_tensor(np.argsort(order), device=batch.device)
    out = {key: torch.cat(values)[inverse] for key, values in parts.items()}
    return GlcmCoefficients(
        **out,
        i=batch.level_values.to(batch.dtype)[:, None, :],
        k_sum=torch.arange(0, 2 * g + 1, **to),
        k_diff=torch.arange(0, g + 1, **to),
        n_levels=batch.n_levels,
        n_present=batch.n_present,
    )


def _sum_moment(c: GlcmCoefficients, order: int) -> torch.Tensor:
    """sum_{i,j} (i + j - mu_x - mu_y)^order p(i, j), grouped by k = i + j: sum_k (k - mu_x - mu_y)^order p_{x+y}(k)
    (orders 2, 3 and 4; the centred k and its square are shared, each moment is computed once)."""
    key = f"moment{order}"
    if key not in c._cache:
        if "centre" not in c._cache:
            centre = c.k_sum - 2 * c.ux[:, :, None]
            c._cache["centre"] = (centre, centre * centre)
        centre, square = c._cache["centre"]
        power = centre if order % 2 else square
        for _ in range((order - 1) // 2 if order % 2 else order // 2 - 1):
            power = power * square
        c._cache[key] = (c.p_sum * power).sum(2)
    return c._cache[key]


def _sum_squares(c: GlcmCoefficients) -> torch.Tensor:
    """sum_i p_x(i) (i - mu_x)^2 (= sigma_x^2 = sigma_y^2), computed once."""
    if "sum_squares" not in c._cache:
        c._cache["sum_squares"] = (c.px * (c.i - c.ux[:, :, None]) ** 2).sum(2)
    return c._cache["sum_squares"]


def autocorrelation(c: GlcmCoefficients) -> torch.Tensor:
    """Autocorrelation = sum_{i,j} p(i, j) i j, as (sum_k k^2 p_{x+y}(k) - sum_k k^2 p_{x-y}(k)) / 4
    (i j = ((i + j)^2 - (i - j)^2) / 4)."""
    return ((c.p_sum * c.k_sum**2).sum(2) - (c.p_diff * c.k_diff**2).sum(2)) / 4


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
    vx = _sum_squares(c)  # = sigma_y^2 (symmetrical GLCM)
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
    return c.sum_p2


def joint_entropy(c: GlcmCoefficients) -> torch.Tensor:
    """JointEntropy = HXY = -sum_{i,j} p(i, j) log2(p(i, j) + eps)."""
    return c.hxy


def imc1(c: GlcmCoefficients) -> torch.Tensor:
    """Imc1 = (HXY - HXY1) / max(HX, HY), HXY1 = -sum p(i, j) log2(p_x(i) p_y(j) + eps); 0 if max(HX, HY) = 0.
    HXY1 = HX + HY = 2 HX (see the module docstring)."""
    value = (c.hxy - 2 * c.hx) / torch.where(c.hx == 0, torch.ones_like(c.hx), c.hx)
    return torch.where(c.hx == 0, torch.zeros_like(value), value)


def imc2(c: GlcmCoefficients) -> torch.Tensor:
    """Imc2 = sqrt(1 - exp(-2 (HXY2 - HXY))), HXY2 = -sum p_x(i) p_y(j) log2(p_x(i) p_y(j) + eps); 0 if HXY2 = HXY.
    HXY2 = HX + HY = 2 HX (see the module docstring)."""
    hxy2 = 2 * c.hx
    value = (1 - torch.exp(-2 * (hxy2 - c.hxy))) ** 0.5
    return torch.where(hxy2 == c.hxy, torch.zeros_like(value), value)


def idm(c: GlcmCoefficients) -> torch.Tensor:
    """Idm = sum_k p_{x-y}(k) / (1 + k^2)."""
    return (c.p_diff / (1 + c.k_diff**2)).sum(2)


def mcc(c: GlcmCoefficients) -> torch.Tensor:
    """MCC = sqrt(second largest eigenvalue of Q), Q(i, j) = sum_k p(i, k) p(j, k) / (p_x(i) p_y(k) + eps);
    1 for a ROI with a single grey level (even without neighbouring pairs, as in PyRadiomics).

    The GLCM is symmetric (p_x = p_y), so Q = D^-1 P D^-1 P with D = diag(p_x) is similar to M^2,
    M = D^-1/2 P D^-1/2 symmetric (eps only guards empty rows, whose rows of Q are 0 as those of M):
    MCC = second largest |eigenvalue| of M, from batched symmetric eigenvalues (:func:`matrix_sums`), items
    grouped by their number of present grey levels."""
    single = torch.as_tensor(c.n_present < 2, device=c.eig2.device)
    return torch.where(single[:, None], torch.ones_like(c.eig2), c.eig2)


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
    return c.max_p


def sum_average(c: GlcmCoefficients) -> torch.Tensor:
    """SumAverage = sum_k k p_{x+y}(k)."""
    return (c.k_sum * c.p_sum).sum(2)


def sum_entropy(c: GlcmCoefficients) -> torch.Tensor:
    """SumEntropy = -sum_k p_{x+y}(k) log2(p_{x+y}(k) + eps)."""
    return -(c.p_sum * torch.log2(c.p_sum + EPS)).sum(2)


def sum_squares(c: GlcmCoefficients) -> torch.Tensor:
    """SumSquares = sum_{i,j} (i - mu_x)^2 p(i, j)."""
    return _sum_squares(c)


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
    """All GLCM features of the batch, name -> (B,) tensor (``voxel_array_shift`` is unused): every feature
    function gives the value per direction, averaged here over the directions that have pairs."""
    c = coefficients(batch)
    per_angle = torch.stack([fn(c) for fn in FEATURES.values()], dim=1)  # (B, F, A)
    out = angle_mean(per_angle, c.used[:, None, :], dim=2)
    single = torch.as_tensor(batch.n_present < 2, device=batch.device)
    mcc_col = list(FEATURES).index("MCC")
    out[:, mcc_col] = torch.where(single, torch.ones_like(out[:, mcc_col]), out[:, mcc_col])
    return dict(zip(FEATURES, out.unbind(1)))
