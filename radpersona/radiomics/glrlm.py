"""Grey Level Run Length Matrix (GLRLM) features, PyRadiomics 3.1 definitions, batched over ROIs.

P(i, j | a): number of runs (maximal sequences of consecutive ROI voxels with equal grey level i)
of length j along direction a, for each of the 13 3-D directions that only move along axes in which
the ROI's bounding box is longer than one voxel (PyRadiomics generates no other angle) and along which
some line holds at least two ROI voxels (PyRadiomics' C code empties other directions). Per direction:
N_r = sum P (number of runs), N_p = sum_j j p_r(j) (number of voxels), p_g(i) = sum_j P(i, j),
p_r(j) = sum_i P(i, j); i runs over grey levels, j over lengths. Every feature function below gives the value
per direction; :func:`compute` averages over the directions that hold runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from radpersona.radiomics._batch import DIRECTIONS, RoiBatch, angle_mean, direction_allowed, neighbour

EPS = float(np.spacing(1))


@dataclass
class GlrlmCoefficients:
    """Marginals of the run-length matrices P (B, A, Gc, R) over compact grey-level ranks, the grey-level and
    length vectors, and the nonzero cells of P (for the entropy)."""

    used: torch.Tensor  # (B, A)
    n_runs: torch.Tensor  # (B, A)
    pg: torch.Tensor  # (B, A, Gc)
    pr: torch.Tensor  # (B, A, R)
    i: torch.Tensor  # (B, 1, Gc) grey level of each rank (1 for padding ranks, whose counts are 0)
    j: torch.Tensor  # (R,)
    pj: torch.Tensor  # (B, A, Gc, 2): sum_j P(i, j) / j^2 and sum_j P(i, j) j^2
    cell_count: torch.Tensor  # (K,) P of the nonzero cells
    cell_angle: torch.Tensor  # (K,) their (item, direction) index b * A + a


def run_lengths(batch: RoiBatch, allowed: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run lengths over compact grey-level ranks: the counts P(i, 1) of runs of one voxel (B, 13, Gc), zero in the
    directions that are not ``allowed`` (B, 13), and the runs of two or more voxels as a (cell, length) list
    (cells b * 13 * Gc + a * Gc + rank) with, for each, the number of such runs; on the host.

    Counted from the batch's equal-neighbour pairs (f, f + s), s the direction's flat step in the padded layout: a
    run of two or more voxels starts at a pair (f, f + s) not preceded by the pair (f - s, f), and is followed one
    step at a time (a ROI voxel's flat successor is its true neighbour, so runs never wrap) until its chain of pairs
    ends. Each run is keyed length * C + cell (C cells) as it is followed, so that one bincount of the keys gives
    P(i, j) for j >= 2. Runs of length 1 are the remaining voxels: P(i, 1) = N_i - sum_{j >= 2} j P(i, j)
    (directions that are not allowed hold no pair, hence no longer run).
    """
    g = batch.n_compact
    n_dir = len(DIRECTIONS)
    nb = batch.size
    n_cells = nb * n_dir * g
    # no run is longer than the largest box side: 32-bit keys where they fit (faster gathers and bincount)
    key_dtype = np.int32 if n_cells * (int(batch.box_sizes.max()) + 1) < 2**31 else np.int64
    item_rank = batch.item_rank.cpu().numpy()  # (item, rank) of every ROI voxel
    cell_flat = np.zeros(batch.rank_flat.shape[0], dtype=key_dtype)  # (item, direction 0, rank) at flat positions
    base = np.repeat(np.arange(nb, dtype=np.int64) * ((n_dir - 1) * g), batch.counts)
    cell_flat[batch.roi_index.cpu().numpy()] = (item_rank + base).astype(key_dtype)
    pairs = batch.equal_neighbour_pairs()
    ended = []  # keys length * n_cells + (item, direction, rank) cell of the runs that end with that length >= 2
    for a, d in enumerate(DIRECTIONS):
        step = batch.flat_offset(d)
        same = pairs[a].cpu().numpy()  # f and f + step: ROI voxels of one rank
        start = np.empty_like(same)  # the pair at f is not preceded by the pair at f - step
        start[:step] = same[:step]
        np.greater(same[step:], same[:-step], out=start[step:])
        pos = np.flatnonzero(start)
        key = np.take(cell_flat, pos)
        key += a * g + 2 * n_cells
        k = 2  # every run in pos holds at least k voxels
        while pos.size:
            hold = same[pos + (k - 1) * step]
            ended.append(np.compress(~hold, key))  # numpy.compress: faster than boolean indexing
            pos, key = np.compress(hold, pos), np.compress(hold, key)
            key += n_cells
            k += 1
    counts = np.bincount(np.concatenate([*ended, np.zeros(0, dtype=key_dtype)]), minlength=2 * n_cells)
    long_key = np.flatnonzero(counts)
    long_count = counts[long_key]
    long_length, long_cell = np.divmod(long_key, n_cells)
    in_long = np.bincount(long_cell, weights=long_count * long_length, minlength=n_cells).reshape(nb, n_dir, g)
    n_i = np.bincount(item_rank, minlength=nb * g).reshape(nb, 1, g)
    single = (n_i - in_long) * allowed.cpu().numpy()[:, :, None]
    return single, np.stack([long_cell, long_length]), long_count


def multi_element_directions(batch: RoiBatch) -> torch.Tensor:
    """(B, 13) True where some line along the direction holds two or more ROI voxels.

    A ROI that fills its bounding box has such a line exactly in the directions that only move along axes in which
    the box is longer than one voxel; the other items are searched for two ROI voxels k = 1, 2, ... steps apart."""
    out = direction_allowed(batch.box_sizes, batch.device)
    partial = np.flatnonzero(batch.counts < np.prod(batch.box_sizes, axis=1))
    if len(partial) == 0:
        return out
    out[torch.as_tensor(partial, device=batch.device)] = False
    masks = batch.mask[torch.as_tensor(partial, device=batch.device)]
    r = int(batch.box_sizes.max())
    for a, d in enumerate(DIRECTIONS):
        todo = torch.arange(len(partial), device=batch.device)
        for k in range(1, r):
            if len(todo) == 0:
                break
            m = masks[todo]
            found = (m & neighbour(m, tuple(k * v for v in d), False)).flatten(1).any(1)
            out[torch.as_tensor(partial, device=batch.device)[todo[found]], a] = True
            todo = todo[~found]
    return out


def coefficients(batch: RoiBatch) -> GlrlmCoefficients:
    """Marginals of the run-length matrices of the batch (sums over the nonzero cells, on the host)."""
    allowed = direction_allowed(batch.box_sizes, batch.device) & multi_element_directions(batch)
    single, (long_cell, long_length), long_count = run_lengths(batch, allowed)
    nb, na, g = single.shape
    r = int(long_length.max(initial=1))
    long_angle = long_cell // g
    pg = single + np.bincount(long_cell, weights=long_count, minlength=nb * na * g).reshape(nb, na, g)
    pr = np.bincount(long_angle * r + long_length - 1, weights=long_count, minlength=nb * na * r).reshape(nb * na, r)
    pr[:, 0] = single.sum(2).reshape(-1)
    pj = np.empty((nb, na, g, 2))
    for k, weight in enumerate((1.0 / long_length**2, long_length**2.0)):
        pj[..., k] = single + np.bincount(long_cell, weights=long_count * weight, minlength=nb * na * g).reshape(
            nb, na, g
        )
    ones = np.flatnonzero(single)
    to: dict[str, Any] = {"dtype": batch.dtype, "device": batch.device}
    pg_t = torch.as_tensor(pg, **to)
    n_runs = pg_t.sum(2)
    lv = batch.level_values.to(batch.dtype)
    return GlrlmCoefficients(
        used=n_runs > 0,
        n_runs=n_runs,
        pg=pg_t,
        pr=torch.as_tensor(pr.reshape(nb, na, r), **to),
        i=torch.where(lv > 0, lv, torch.ones_like(lv))[:, None, :],
        j=torch.arange(1, r + 1, **to),
        pj=torch.as_tensor(pj, **to),
        cell_count=torch.as_tensor(np.concatenate([single.reshape(-1)[ones], long_count]), **to),
        cell_angle=torch.as_tensor(np.concatenate([ones // g, long_angle]), device=batch.device),
    )


def short_run_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """ShortRunEmphasis = sum_j p_r(j) / j^2 / N_r."""
    return (c.pr / c.j**2).sum(2) / c.n_runs


def long_run_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """LongRunEmphasis = sum_j p_r(j) j^2 / N_r."""
    return (c.pr * c.j**2).sum(2) / c.n_runs


def gray_level_non_uniformity(c: GlrlmCoefficients) -> torch.Tensor:
    """GrayLevelNonUniformity = sum_i p_g(i)^2 / N_r."""
    return (c.pg**2).sum(2) / c.n_runs


def gray_level_non_uniformity_normalized(c: GlrlmCoefficients) -> torch.Tensor:
    """GrayLevelNonUniformityNormalized = sum_i p_g(i)^2 / N_r^2."""
    return (c.pg**2).sum(2) / c.n_runs**2


def run_length_non_uniformity(c: GlrlmCoefficients) -> torch.Tensor:
    """RunLengthNonUniformity = sum_j p_r(j)^2 / N_r."""
    return (c.pr**2).sum(2) / c.n_runs


def run_length_non_uniformity_normalized(c: GlrlmCoefficients) -> torch.Tensor:
    """RunLengthNonUniformityNormalized = sum_j p_r(j)^2 / N_r^2."""
    return (c.pr**2).sum(2) / c.n_runs**2


def run_percentage(c: GlrlmCoefficients) -> torch.Tensor:
    """RunPercentage = N_r / N_p, N_p = sum_j j p_r(j)."""
    return c.n_runs / (c.pr * c.j).sum(2)


def gray_level_variance(c: GlrlmCoefficients) -> torch.Tensor:
    """GrayLevelVariance = sum_i q(i) (i - mu)^2, q = p_g / N_r, mu = sum_i q(i) i."""
    q = c.pg / c.n_runs[:, :, None]
    mu = (q * c.i).sum(2, keepdim=True)
    return (q * (c.i - mu) ** 2).sum(2)


def run_variance(c: GlrlmCoefficients) -> torch.Tensor:
    """RunVariance = sum_j q(j) (j - mu)^2, q = p_r / N_r, mu = sum_j q(j) j."""
    q = c.pr / c.n_runs[:, :, None]
    mu = (q * c.j).sum(2, keepdim=True)
    return (q * (c.j - mu) ** 2).sum(2)


def run_entropy(c: GlrlmCoefficients) -> torch.Tensor:
    """RunEntropy = -sum_{i,j} q(i, j) log2(q(i, j) + eps), q = P / N_r."""
    q = c.cell_count / c.n_runs.reshape(-1)[c.cell_angle]  # nonzero cells only: q = 0 adds nothing
    terms = torch.bincount(c.cell_angle, weights=q * torch.log2(q + EPS), minlength=c.n_runs.numel())
    return -terms.reshape(c.n_runs.shape).to(q.dtype)


def low_gray_level_run_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """LowGrayLevelRunEmphasis = sum_i p_g(i) / i^2 / N_r."""
    return (c.pg / c.i**2).sum(2) / c.n_runs


def high_gray_level_run_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """HighGrayLevelRunEmphasis = sum_i p_g(i) i^2 / N_r."""
    return (c.pg * c.i**2).sum(2) / c.n_runs


def _weighted(c: GlrlmCoefficients, long: bool, grey_power: int) -> torch.Tensor:
    """sum_{i,j} P(i, j) i^grey_power j^(2 if long else -2) / N_r, averaged over directions."""
    return (c.pj[..., int(long)] * c.i**grey_power).sum(2) / c.n_runs


def short_run_low_gray_level_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """ShortRunLowGrayLevelEmphasis = sum_{i,j} P(i, j) / (i^2 j^2) / N_r."""
    return _weighted(c, False, -2)


def short_run_high_gray_level_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """ShortRunHighGrayLevelEmphasis = sum_{i,j} P(i, j) i^2 / j^2 / N_r."""
    return _weighted(c, False, 2)


def long_run_low_gray_level_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """LongRunLowGrayLevelEmphasis = sum_{i,j} P(i, j) j^2 / i^2 / N_r."""
    return _weighted(c, True, -2)


def long_run_high_gray_level_emphasis(c: GlrlmCoefficients) -> torch.Tensor:
    """LongRunHighGrayLevelEmphasis = sum_{i,j} P(i, j) i^2 j^2 / N_r."""
    return _weighted(c, True, 2)


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
    """All GLRLM features of the batch, name -> (B,) tensor (``voxel_array_shift`` is unused): every feature
    function gives the value per direction, averaged here over the directions that hold runs."""
    c = coefficients(batch)
    per_angle = torch.stack([fn(c) for fn in FEATURES.values()], dim=1)  # (B, F, A)
    return dict(zip(FEATURES, angle_mean(per_angle, c.used[:, None, :], dim=2).unbind(1)))
