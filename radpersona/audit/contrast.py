"""How much lesion signal a stage keeps: lesion-vs-healthy contrast-to-noise, residual in vs out.

The contrast-to-noise ratio (CNR) compares the case's image with its *healthy counterpart on the same
grid* (synthetic cohorts: the same knee, pose, acquisition and noise realisation with the lesions
switched off), so ``image - healthy`` is the lesion's own signal with the noise cancelled. The noise
is estimated once, robustly, on the raw counterpart (the finest grid, where anatomy least mimics
noise) and carried to each later stage through that stage's linear intensity map (resampling and
normalisation scale). Contrast and noise are in the stage's intensity unit, so the ratio is unit-free
and comparable between stages (raw uint8, percentile-normalised, registered): an affine intensity
map changes numerator and denominator alike; resampling changes the contrast through partial volume
and the noise through interpolation, which is what the audit measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import truncnorm

from radpersona.errors import InputDataError
from radpersona.features import tissue_threshold
from radpersona.persona.masks import box_slices
from radpersona.truth import LESION_FRACTION

__all__ = [
    "LesionContrast",
    "ResidualContrast",
    "lesion_cnr",
    "noise_sd",
    "propagated_noise_sd",
    "residual_contrast",
]

#: Consistency constant of the median absolute deviation for a normal distribution (1 / Phi^-1(3/4)).
MAD_TO_SD = 1.482602218505602

#: Clipping half-width (in sds) of :func:`noise_sd` and the sd of a standard normal truncated to +-CLIP.
CLIP = 3.0
TRUNCATED_SD = float(truncnorm(-CLIP, CLIP).std())

#: Fewest neighbour pairs from which :func:`noise_sd` estimates a noise level.
MIN_NOISE_PAIRS = 20


def noise_sd(
    volume: np.ndarray,
    *,
    axis: int = 1,
    order: int = 2,
    case: str | None = None,
    view: str | None = None,
) -> float:
    """Robust estimate of the noise standard deviation of a volume, from neighbour differences.

    Differences along ``axis`` of order 1, ``d = x[v + e] - x[v]``, or of order 2 (the default),
    ``d = x[v - e] - 2 x[v] + x[v + e]``, have sd ``sigma sqrt(2)`` resp. ``sigma sqrt(6)`` wherever the
    underlying signal is locally flat (order 2: locally linear, so soft edges and bias fields cancel),
    if the noise of neighbours is independent with sd ``sigma``. Differences across a tissue edge hold
    anatomy, not noise, so the estimate is sigma-clipped:

    1. ``s_0 = 1.4826 * median(|d - m|)`` with ``m = median(d)``;
    2. ``s_{t+1} = sd{d : |d - m| < 3 s_t} / 0.98658`` (0.98658 is the sd of a standard normal
       truncated to +-3), until ``s`` changes by less than 1e-6 of itself (at most 50 rounds);
    3. ``sigma = s / sqrt(2)`` resp. ``s / sqrt(6)``.

    Differences across edges of more than about 4 sds of ``d`` are removed in the first rounds;
    smaller ones (low-contrast or partial-volume edges) stay and bias the estimate upwards, the more so
    the larger their share of all differences. That bias grows as voxels coarsen, so estimate the
    noise at the finest stage (the raw volume) and carry it to coarser stages with
    :func:`propagated_noise_sd` rather than re-estimating it there. Differences are used only where
    all their voxels are

    - tissue: above the Otsu threshold of the volume (:func:`radpersona.features.tissue_threshold`),
      because in air the magnitude (Rician) noise is Rayleigh-distributed, smaller and skewed;
    - strictly between the volume's minimum and maximum, because clipped voxels (percentile
      normalisation, uint8 saturation) have no noise.

    ``axis`` must be one along which neighbouring voxels carry independent noise (not an upsampled
    axis, where interpolated neighbours share noise and the estimate drops). The default is the row
    axis: in-plane, at full acquired resolution in raw volumes.

    Returns:
        The estimate (same unit as ``volume``); 0.0 for a noise-free piecewise-constant volume.

    Raises:
        InputDataError: not a 3-D array, or fewer than :data:`MIN_NOISE_PAIRS` usable differences.
        ValueError: ``axis`` not in 0..2 or ``order`` not 1 or 2.
    """
    x = np.asarray(volume, dtype=np.float64)
    if x.ndim != 3:
        raise InputDataError(
            "noise estimate needs a 3-D volume (slices, rows, cols)", case=case, view=view, value=x.shape
        )
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, not {axis}")
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, not {order}")
    lo, hi = float(x.min()), float(x.max())
    usable = np.moveaxis((x > tissue_threshold(x, "original")) & (x > lo) & (x < hi), axis, -1)
    x = np.moveaxis(x, axis, -1)
    if order == 1:
        d = (x[..., 1:] - x[..., :-1])[usable[..., 1:] & usable[..., :-1]]
        factor = math.sqrt(2.0)
    else:
        d = (x[..., :-2] - 2.0 * x[..., 1:-1] + x[..., 2:])[usable[..., :-2] & usable[..., 1:-1] & usable[..., 2:]]
        factor = math.sqrt(6.0)
    if d.size < MIN_NOISE_PAIRS:
        raise InputDataError(
            f"too few tissue voxel differences to estimate noise ({d.size} < {MIN_NOISE_PAIRS}) along axis {axis}",
            case=case,
            view=view,
            value=d.size,
        )
    centre = float(np.median(d))
    dev = np.abs(d - centre)
    scale = float(MAD_TO_SD * np.median(dev))
    for _ in range(50):
        kept = d[dev < CLIP * scale]
        if scale == 0.0 or kept.size < MIN_NOISE_PAIRS:
            break
        new = float(kept.std()) / TRUNCATED_SD
        converged = abs(new - scale) <= 1e-6 * scale
        scale = new
        if converged:
            break
    return scale / factor


def propagated_noise_sd(
    sigma: float,
    transform: Callable[[np.ndarray], np.ndarray],
    shape: Sequence[int],
    *,
    seed: int = 0,
) -> float:
    """Noise sd at a later stage, from the noise sd ``sigma`` of the stage that feeds it.

    ``sigma_out = sigma * sd(T(z))`` with ``z`` a white unit-variance Gaussian field of ``shape`` (the
    input grid) and ``T`` the stage's *linear* intensity map: resampling (``resize``, ``reg_resample``)
    times the normalisation's scale (:func:`radpersona.audit.grid.intensity_scale`; offsets and
    clipping do not carry noise). The sd is over the whole output grid, i.e. the root mean square of
    the noise sd, which varies from voxel to voxel with the interpolation weights.

    Args:
        sigma: noise sd of the input stage (e.g. :func:`noise_sd` of the raw volume).
        transform: the stage's linear map, input array -> output array.
        shape: the input grid.
        seed: seed of ``z``.
    """
    z = np.random.default_rng(seed).standard_normal(tuple(int(s) for s in shape)).astype(np.float32)
    return float(sigma) * float(np.asarray(transform(z), dtype=np.float64).std())


@dataclass(frozen=True)
class LesionContrast:
    """Lesion-vs-healthy contrast of one lesion at one stage.

    Attributes:
        n_voxels: lesion voxels (fraction >= threshold) the contrast is averaged over.
        contrast: ``mean_{v in L} (image(v) - healthy(v))`` (signed; NaN without lesion voxels).
        noise: noise sd ``sigma`` used (:func:`noise_sd` of the healthy counterpart unless given).
        cnr: ``contrast / sigma`` (signed; NaN without lesion voxels, +-inf for a noise-free image).
    """

    n_voxels: int
    contrast: float
    noise: float
    cnr: float


def lesion_cnr(
    image: np.ndarray,
    healthy: np.ndarray,
    fraction: np.ndarray,
    *,
    noise: float | None = None,
    threshold: float = LESION_FRACTION,
    case: str | None = None,
    view: str | None = None,
) -> LesionContrast:
    """Contrast-to-noise ratio of a lesion against its healthy counterpart on the same grid.

    ``CNR = mean_{v in L} (I(v) - H(v)) / sigma`` with ``L = {v : f(v) >= threshold}`` the lesion
    voxels, ``I`` the image, ``H`` its healthy counterpart (same grid and intensity scale, e.g.
    :func:`radpersona.audit.grid.preprocess_with_counterparts` or
    :func:`radpersona.truth.healthy_on_grid`) and ``sigma`` the noise sd of the stage. Pass ``noise``
    for every stage but the finest: :func:`noise_sd` of the raw counterpart carried to the stage by
    :func:`propagated_noise_sd` (direct estimates on coarse grids mistake partial-volume edges for
    noise). Without ``noise``, ``sigma`` is :func:`noise_sd` of ``H``: the counterpart shares the
    image's noise realisation (and gain, bias field, resampling and normalisation), so its noise is
    the image's, and the lesion's own edges stay out of the statistics. ``I - H`` has no noise at all:
    the numerator is the lesion's mean signal, diluted by partial volume as the grid coarsens, and
    ``|CNR|`` is how many noise sds a lesion voxel stands out on average. Signed: positive for a hyperintense lesion.

    Raises:
        InputDataError: arrays of different shapes (names case and view and the shapes).
    """
    img = np.asarray(image, dtype=np.float64)
    hea = np.asarray(healthy, dtype=np.float64)
    frac = np.asarray(fraction)
    if not img.shape == hea.shape == frac.shape:
        raise InputDataError(
            "image, healthy counterpart and lesion fraction must share one grid",
            case=case,
            view=view,
            value=(img.shape, hea.shape, frac.shape),
        )
    sigma = noise_sd(hea, case=case, view=view) if noise is None else float(noise)
    lesion = frac >= threshold
    n = int(np.count_nonzero(lesion))
    if n == 0:
        return LesionContrast(0, float("nan"), sigma, float("nan"))
    contrast = float((img[lesion] - hea[lesion]).mean())
    if sigma > 0:
        cnr = contrast / sigma
    else:
        cnr = math.copysign(math.inf, contrast) if contrast != 0 else 0.0
    return LesionContrast(n, contrast, sigma, cnr)


@dataclass(frozen=True)
class ResidualContrast:
    """Residual magnitude inside versus outside a lesion, within the persona box.

    Attributes:
        inside: ``mean |r|`` over lesion voxels (fraction >= threshold) in the box (NaN if none).
        outside: ``mean |r|`` over box voxels with fraction exactly 0 (NaN if none).
        ratio: ``inside / outside`` (NaN if either is NaN, inf if only ``outside`` is 0).
        n_inside, n_outside: voxel counts of the two sets.
    """

    inside: float
    outside: float
    ratio: float
    n_inside: int
    n_outside: int


def residual_contrast(
    residual: np.ndarray,
    fraction: np.ndarray,
    box: Sequence[float],
    *,
    threshold: float = LESION_FRACTION,
    case: str | None = None,
    view: str | None = None,
) -> ResidualContrast:
    """Mean absolute residual (input - persona) inside the lesion versus the rest of the box.

    Only the persona box (``persona.box`` fractions, :func:`radpersona.persona.masks.box_slices`) is
    compared, because outside it the persona equals the input and the residual is 0 by construction.
    Voxels partly covered by lesion (``0 < f < threshold``) belong to neither set. A persona that
    removes the lesion and reproduces healthy tissue gives ``ratio >> 1``; a persona that copies the
    lesion (or whose error elsewhere is as large) gives ``ratio ~ 1``.

    Raises:
        InputDataError: residual and fraction of different shapes.
    """
    r = np.asarray(residual, dtype=np.float64)
    frac = np.asarray(fraction)
    if r.shape != frac.shape or r.ndim != 3:
        raise InputDataError(
            "residual and lesion fraction must be 3-D arrays on one grid",
            case=case,
            view=view,
            value=(r.shape, frac.shape),
        )
    sl = box_slices(r.shape, box)
    rb, fb = np.abs(r[sl]), frac[sl]
    inside_mask, outside_mask = fb >= threshold, fb == 0
    n_in, n_out = int(inside_mask.sum()), int(outside_mask.sum())
    inside = float(rb[inside_mask].mean()) if n_in else float("nan")
    outside = float(rb[outside_mask].mean()) if n_out else float("nan")
    if math.isnan(inside) or math.isnan(outside):
        ratio = float("nan")
    elif outside == 0:
        ratio = math.inf if inside > 0 else float("nan")
    else:
        ratio = inside / outside
    return ResidualContrast(inside, outside, ratio, n_in, n_out)
