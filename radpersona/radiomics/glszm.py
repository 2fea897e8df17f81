"""Grey Level Size Zone Matrix (GLSZM) features, PyRadiomics 3.1 definitions, batched over ROIs.

P(i, j): number of zones (26-connected groups of ROI voxels with equal grey level i) of size j voxels.
N_z = sum P (number of zones), N_p = number of ROI voxels, p_g(i) = sum_j P(i, j), p_s(j) =
sum_i P(i, j), eps = numpy.spacing(1). Zones of the whole batch are labelled in one
``skimage.measure.label`` call (items separated by a background slice), on the CPU; the features use the
marginals of P and its nonzero cells, from the list of zones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from skimage.measure import label as connected_labels

from radpersona.radiomics._batch import RoiBatch

EPS = float(np.spacing(1))


@dataclass
class GlszmCoefficients:
    """Marginals of the size-zone matrices P (B, Gc, Su) over compact grey-level ranks and the Su zone sizes that
    occur in the batch, counts, grey-level/size vectors, and the nonzero cells of P (for the entropy)."""

    n_zones: torch.Tensor  # (B,)
    n_voxels: torch.Tensor  # (B,)
    pg: torch.Tensor  # (B, Gc)
    ps: torch.Tensor  # (B, Su)
    i: torch.Tensor  # (B, Gc) grey level of each rank (1 for padding ranks, whose counts are 0)
    j: torch.Tensor  # (Su,) zone sizes
    pj: torch.Tensor  # (B, Gc, 2): sum_j P(i, j) / j^2 and sum_j P(i, j) j^2
    cell_count: torch.Tensor  # (K,) P of the nonzero cells
    cell_item: torch.Tensor  # (K,) their item


def size_zones(batch: RoiBatch) -> tuple[np.ndarray, np.ndarray]:
    """(item, rank) cell (item * Gc + rank) and size of every zone of the batch, on the host.

    Zones are labelled on the compact ranks (equal ranks <=> equal grey levels) of the items' padded boxes, stacked
    along the slices (a background slice before each item), in one ``skimage.measure.label`` call.
    """
    rank = batch.boxes(batch.rank_flat).cpu().numpy()  # (B, Zp, Yp, Xp): a background slice before each item
    nb, zp, yp, xp = rank.shape
    small = rank.astype(np.uint16) if batch.n_compact < 65535 else rank
    labels = connected_labels(small.reshape(nb * zp, yp, xp), background=0, connectivity=3)
    # label of every ROI voxel, in the order of the batch's ROI voxel lists (item-major, C order in each box)
    voxel_label = np.take(labels.reshape(-1), batch.roi_index.cpu().numpy())
    zone_size = np.bincount(voxel_label)[1:]
    zone_cell = np.zeros(len(zone_size) + 1, dtype=np.int64)
    zone_cell[voxel_label] = batch.item_rank.cpu().numpy()
    return zone_cell[1:], zone_size


def coefficients(batch: RoiBatch) -> GlszmCoefficients:
    """Marginals of the size-zone matrices of the batch, from its list of zones (on the host)."""
    cell, size = size_zones(batch)
    nb, gc = batch.size, batch.n_compact
    occurs = np.bincount(size) > 0
    sizes = np.flatnonzero(occurs).astype(np.float64)
    size_index = (np.cumsum(occurs) - 1)[size]
    su = len(sizes)
    item = cell // gc
    keys, cell_count = np.unique(cell * su + size_index, return_counts=True)  # the nonzero cells of P
    pj = np.stack(
        [
            np.bincount(cell, weights=w, minlength=nb * gc)
            for w in (1.0 / sizes[size_index] ** 2, sizes[size_index] ** 2)
        ],
        axis=1,
    )
    to: dict[str, Any] = {"dtype": batch.dtype, "device": batch.device}
    pg = torch.as_tensor(np.bincount(cell, minlength=nb * gc).reshape(nb, gc), **to)
    i = batch.level_values.to(batch.dtype)
    return GlszmCoefficients(
        n_zones=pg.sum(1),
        n_voxels=batch.n_voxels.to(batch.dtype),
        pg=pg,
        ps=torch.as_tensor(np.bincount(item * su + size_index, minlength=nb * su).reshape(nb, su), **to),
        i=torch.where(i > 0, i, torch.ones_like(i)),
        j=torch.as_tensor(sizes, **to),
        pj=torch.as_tensor(pj.reshape(nb, gc, 2), **to),
        cell_count=torch.as_tensor(cell_count, **to),
        cell_item=torch.as_tensor(keys // (su * gc), device=batch.device),
    )


def small_area_emphasis(c: GlszmCoefficients) -> torch.Tensor:
    """SmallAreaEmphasis = sum_j p_s(j) / j^2 / N_z."""
    return (c.ps / c.j**2).sum(1) / c.n_zones


def large_area_emphasis(c: GlszmCoefficients) -> torch.Tensor:
    """LargeAreaEmphasis = sum_j p_s(j) j^2 / N_z."""
    return (c.ps * c.j**2).sum(1) / c.n_zones


def gray_level_non_uniformity(c: GlszmCoefficients) -> torch.Tensor:
    """GrayLevelNonUniformity = sum_i p_g(i)^2 / N_z."""
    return (c.pg**2).sum(1) / c.n_zones


def gray_level_non_uniformity_normalized(c: GlszmCoefficients) -> torch.Tensor:
    """GrayLevelNonUniformityNormalized = sum_i p_g(i)^2 / N_z^2."""
    return (c.pg**2).sum(1) / c.n_zones**2


def size_zone_non_uniformity(c: GlszmCoefficients) -> torch.Tensor:
    """SizeZoneNonUniformity = sum_j p_s(j)^2 / N_z."""
    return (c.ps**2).sum(1) / c.n_zones


def size_zone_non_uniformity_normalized(c: GlszmCoefficients) -> torch.Tensor:
    """SizeZoneNonUniformityNormalized = sum_j p_s(j)^2 / N_z^2."""
    return (c.ps**2).sum(1) / c.n_zones**2


def zone_percentage(c: GlszmCoefficients) -> torch.Tensor:
    """ZonePercentage = N_z / N_p."""
    return c.n_zones / c.n_voxels


def gray_level_variance(c: GlszmCoefficients) -> torch.Tensor:
    """GrayLevelVariance = sum_i q(i) (i - mu)^2, q = p_g / N_z, mu = sum_i q(i) i."""
    q = c.pg / c.n_zones[:, None]
    mu = (q * c.i).sum(1, keepdim=True)
    return (q * (c.i - mu) ** 2).sum(1)


def zone_variance(c: GlszmCoefficients) -> torch.Tensor:
    """ZoneVariance = sum_j q(j) (j - mu)^2, q = p_s / N_z, mu = sum_j q(j) j."""
    q = c.ps / c.n_zones[:, None]
    mu = (q * c.j).sum(1, keepdim=True)
    return (q * (c.j - mu) ** 2).sum(1)


def zone_entropy(c: GlszmCoefficients) -> torch.Tensor:
    """ZoneEntropy = -sum_{i,j} q(i, j) log2(q(i, j) + eps), q = P / N_z."""
    q = c.cell_count / c.n_zones[c.cell_item]  # nonzero cells only: q = 0 adds nothing
    terms = torch.bincount(c.cell_item, weights=q * torch.log2(q + EPS), minlength=c.n_zones.shape[0])
    return -terms.to(q.dtype)


def low_gray_level_zone_emphasis(c: GlszmCoefficients) -> torch.Tensor:
    """LowGrayLevelZoneEmphasis = sum_i p_g(i) / i^2 / N_z."""
    return (c.pg / c.i**2).sum(1) / c.n_zones


def high_gray_level_zone_emphasis(c: GlszmCoefficients) -> torch.Tensor:
    """HighGrayLevelZoneEmphasis = sum_i p_g(i) i^2 / N_z."""
    return (c.pg * c.i**2).sum(1) / c.n_zones


def _weighted(c: GlszmCoefficients, large: bool, grey_power: int) -> torch.Tensor:
    """sum_{i,j} P(i, j) i^grey_power j^(2 if large else -2) / N_z."""
    return (c.pj[..., int(large)] * c.i**grey_power).sum(1) / c.n_zones


def small_area_low_gray_level_emphasis(c: GlszmCoefficients) -> torch.Tensor:
    """SmallAreaLowGrayLevelEmphasis = sum_{i,j} P(i, j) / (i^2 j^2) / N_z."""
    return _weighted(c, False, -2)


def small_area_high_gray_level_emphasis(c: GlszmCoefficients) -> torch.Tensor:
    """SmallAreaHighGrayLevelEmphasis = sum_{i,j} P(i, j) i^2 / j^2 / N_z."""
    return _weighted(c, False, 2)


def large_area_low_gray_level_emphasis(c: GlszmCoefficients) -> torch.Tensor:
    """LargeAreaLowGrayLevelEmphasis = sum_{i,j} P(i, j) j^2 / i^2 / N_z."""
    return _weighted(c, True, -2)


def large_area_high_gray_level_emphasis(c: GlszmCoefficients) -> torch.Tensor:
    """LargeAreaHighGrayLevelEmphasis = sum_{i,j} P(i, j) i^2 j^2 / N_z."""
    return _weighted(c, True, 2)


#: PyRadiomics feature name -> function.
FEATURES: dict[str, Callable[[GlszmCoefficients], torch.Tensor]] = {
    "GrayLevelNonUniformity": gray_level_non_uniformity,
    "GrayLevelNonUniformityNormalized": gray_level_non_uniformity_normalized,
    "GrayLevelVariance": gray_level_variance,
    "HighGrayLevelZoneEmphasis": high_gray_level_zone_emphasis,
    "LargeAreaEmphasis": large_area_emphasis,
    "LargeAreaHighGrayLevelEmphasis": large_area_high_gray_level_emphasis,
    "LargeAreaLowGrayLevelEmphasis": large_area_low_gray_level_emphasis,
    "LowGrayLevelZoneEmphasis": low_gray_level_zone_emphasis,
    "SizeZoneNonUniformity": size_zone_non_uniformity,
    "SizeZoneNonUniformityNormalized": size_zone_non_uniformity_normalized,
    "SmallAreaEmphasis": small_area_emphasis,
    "SmallAreaHighGrayLevelEmphasis": small_area_high_gray_level_emphasis,
    "SmallAreaLowGrayLevelEmphasis": small_area_low_gray_level_emphasis,
    "ZoneEntropy": zone_entropy,
    "ZonePercentage": zone_percentage,
    "ZoneVariance": zone_variance,
}


def compute(batch: RoiBatch, *, voxel_array_shift: float = 0.0) -> dict[str, torch.Tensor]:
    """All GLSZM features of the batch, name -> (B,) tensor (``voxel_array_shift`` is unused)."""
    c = coefficients(batch)
    return {name: fn(c) for name, fn in FEATURES.items()}
