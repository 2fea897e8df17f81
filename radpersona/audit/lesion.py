"""How big is a lesion on a grid, and where does it lie relative to the persona box and its patches.

Every function takes a *lesion fraction* map (values in [0, 1]: the fraction of each voxel covered
by the lesion, as :mod:`radpersona.truth` carries masks onto working grids; a binary mask is a
fraction map too). A voxel is a *lesion voxel* when its fraction is at least ``threshold``
(:data:`radpersona.truth.LESION_FRACTION` by default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from radpersona.errors import InputDataError
from radpersona.features import patch_grid
from radpersona.localisation import lesion_patches
from radpersona.persona.masks import box_slices
from radpersona.truth import LESION_FRACTION

Patch = tuple[int, int, int]

__all__ = ["BoxShare", "LesionSize", "box_share", "lesion_size"]


def _check_fraction(fraction: np.ndarray, case: str | None, view: str | None) -> np.ndarray:
    fraction = np.asarray(fraction, dtype=np.float64)
    if fraction.ndim != 3:
        raise InputDataError(
            "lesion fraction map must be 3-D (slices, rows, cols)", case=case, view=view, value=fraction.shape
        )
    if fraction.size and (not np.all(np.isfinite(fraction)) or fraction.min() < 0.0 or fraction.max() > 1.0):
        bad = fraction[~np.isfinite(fraction) | (fraction < 0) | (fraction > 1)]
        raise InputDataError("lesion fraction values must lie in [0, 1]", case=case, view=view, value=float(bad[0]))
    return fraction


def _check_spacing(spacing: Sequence[float], case: str | None, view: str | None) -> tuple[float, float, float]:
    values = tuple(float(s) for s in spacing)
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise InputDataError("spacing must be three positive numbers (mm)", case=case, view=view, value=tuple(spacing))
    return (values[0], values[1], values[2])


@dataclass(frozen=True)
class LesionSize:
    """A lesion's size on one grid.

    Attributes:
        n_voxels: lesion voxels, ``#{v : f(v) >= threshold}``.
        volume_mm3: partial-volume lesion volume ``V = sum_v f(v) * s_0 s_1 s_2`` (nearly the same at
            every stage: resampling a fraction map conserves its mass up to edge effects).
        equivalent_diameter_mm: diameter of the ball of volume ``V``: ``(6 V / pi)^(1/3)``.
        extent_mm: extent of the lesion voxels along (slices, rows, cols): ``(max - min + 1) * s_a`` of
            their indices, 0 without lesion voxels.
        thickness_mm: second-moment thickness ``sqrt(12 lambda_min)``, with ``lambda_min`` the smallest
            eigenvalue of the second-moment matrix (mm^2) of the lesion voxels, each voxel counted as
            a uniform box (its centre's covariance plus ``diag(s_a^2 / 12)``): the width of the
            uniform slab with the same smallest moment. Exact for box-shaped lesions in any
            orientation and anisotropic spacing; ``sqrt(12 / 5) r ~ 1.55 r`` for a ball of radius
            ``r``; larger than the band width for a curved band, and the parts' spread for a lesion of
            several parts (effusion). 0 without lesion voxels. The
            thinnest dimension is what resampling erases first.
    """

    n_voxels: int
    volume_mm3: float
    equivalent_diameter_mm: float
    extent_mm: tuple[float, float, float]
    thickness_mm: float


def lesion_size(
    fraction: np.ndarray,
    spacing: Sequence[float],
    *,
    threshold: float = LESION_FRACTION,
    case: str | None = None,
    view: str | None = None,
) -> LesionSize:
    """Voxel count and physical size (mm) of the lesion in ``fraction`` on a grid of ``spacing``.

    Args:
        fraction: lesion fraction map (slices, rows, cols), values in [0, 1].
        spacing: voxel size in mm, same axis order.
        threshold: fraction from which a voxel is a lesion voxel.
        case, view: named in errors.

    Returns:
        :class:`LesionSize` (see its attributes for the formulas).
    """
    frac = _check_fraction(fraction, case, view)
    s = _check_spacing(spacing, case, view)
    volume = float(frac.sum()) * s[0] * s[1] * s[2]
    lesion = frac >= threshold
    n = int(np.count_nonzero(lesion))
    if n == 0:
        return LesionSize(0, volume, (6.0 * volume / math.pi) ** (1 / 3), (0.0, 0.0, 0.0), 0.0)
    idx = np.nonzero(lesion)
    lo = [int(i.min()) for i in idx]
    hi = [int(i.max()) for i in idx]
    extent = tuple((h - lo_ + 1) * sp for lo_, h, sp in zip(lo, hi, s))
    # second moments (mm^2) of the lesion voxels' centres, plus each voxel's own box (s^2 / 12 per axis)
    coords = np.stack(idx, axis=1).astype(np.float64) * np.asarray(s)
    moments = np.atleast_2d(np.cov(coords, rowvar=False, bias=True)) if n > 1 else np.zeros((3, 3))
    moments = moments + np.diag(np.asarray(s) ** 2 / 12.0)
    thickness = float(np.sqrt(12.0 * max(float(np.linalg.eigvalsh(moments)[0]), 0.0)))
    return LesionSize(
        n_voxels=n,
        volume_mm3=volume,
        equivalent_diameter_mm=(6.0 * volume / math.pi) ** (1 / 3),
        extent_mm=extent,  # type: ignore[arg-type]
        thickness_mm=thickness,
    )


@dataclass(frozen=True)
class BoxShare:
    """Where a lesion lies relative to the persona box and its patch grids.

    Attributes:
        share: ``sum_{v in box} f(v) / sum_v f(v)``, the share of the lesion (partial-volume mass)
            inside the box; NaN without any lesion mass.
        n_voxels_in_box: lesion voxels (``f >= threshold``) inside the box.
        patches: per grid ``n``, the patches ``(i, j, k)`` of the ``n x n x n`` grid over the box that
            hold at least one lesion voxel (:func:`radpersona.localisation.lesion_patches`), sorted.
        main_patch: per grid ``n``, the patch holding the largest lesion mass ``sum f`` (first in
            ``i, j, k`` order on ties); ``None`` when no lesion mass lies in the box.
        patch_mass: per grid ``n``, the lesion mass of every patch that holds any, as a share of the
            lesion's mass inside the box.
    """

    share: float
    n_voxels_in_box: int
    patches: dict[int, list[Patch]] = field(default_factory=dict)
    main_patch: dict[int, Patch | None] = field(default_factory=dict)
    patch_mass: dict[int, dict[Patch, float]] = field(default_factory=dict)


def box_share(
    fraction: np.ndarray,
    box: Sequence[float],
    *,
    grids: Sequence[int] = (2, 3),
    threshold: float = LESION_FRACTION,
    case: str | None = None,
    view: str | None = None,
) -> BoxShare:
    """Share of the lesion inside the central persona box (``persona.box`` fractions) and its patches.

    The box is :func:`radpersona.persona.masks.box_slices` of the fraction map's shape (the box of the
    grid the map is on) and the patches are :func:`radpersona.features.patch_grid` of that box.

    Args:
        fraction: lesion fraction map on the grid of interest.
        box: fractions of depth, height and width (``persona.box``).
        grids: patch grids ``n`` to report.
        threshold: fraction from which a voxel is a lesion voxel.
        case, view: named in errors.
    """
    frac = _check_fraction(fraction, case, view)
    sl = box_slices(frac.shape, box)
    total = float(frac.sum())
    inside = float(frac[sl].sum())
    lesion = frac >= threshold
    patches: dict[int, list[Patch]] = {}
    main: dict[int, Patch | None] = {}
    mass: dict[int, dict[Patch, float]] = {}
    for n in grids:
        patches[int(n)] = sorted(lesion_patches(lesion, box, int(n)))
        per_patch = {ijk: float(frac[psl].sum()) for ijk, psl in patch_grid(sl, int(n))}
        held = {ijk: m for ijk, m in per_patch.items() if m > 0.0}
        mass[int(n)] = {ijk: m / inside for ijk, m in held.items()} if inside > 0 else {}
        main[int(n)] = max(held, key=lambda ijk: (held[ijk], tuple(-c for c in ijk))) if held else None
    return BoxShare(
        share=inside / total if total > 0 else float("nan"),
        n_voxels_in_box=int(np.count_nonzero(lesion[sl])),
        patches=patches,
        main_patch=main,
        patch_mass=mass,
    )
