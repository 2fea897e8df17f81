"""Scores of the reconstruction study: MSE, 3-D SSIM and the contrast a persona removed from a lesion.

Every image is (C, D, H, W) on the preprocess intensity scale (C views as channels). SSIM is skimage's
``structural_similarity`` per view with a uniform window of 7 voxels (or the largest odd size that
fits the crop), ``data_range`` = the width of ``persona.intensity_range``, averaged over the views.
``contrast_removed = 1 - mean|persona - healthy| / mean|original - healthy|`` over the lesion voxels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MIN_LESION_CONTRAST", "ssim_3d", "region_metrics", "counterfactual_metrics"]

MIN_LESION_CONTRAST = 1e-3
"""A lesion whose mean|original - healthy| in the box is below this has no visible contrast (no rows)."""


def _win_size(shape: Sequence[int]) -> int | None:
    smallest = min(int(s) for s in shape)
    if smallest < 3:
        return None
    return min(7, smallest if smallest % 2 else smallest - 1)


def ssim_3d(reference: np.ndarray, test: np.ndarray, data_range: float, within: np.ndarray | None = None) -> float:
    """3-D SSIM per view (skimage, uniform window), averaged over views.

    Args:
        reference, test: (C, D, H, W) arrays.
        data_range: intensity range of the scale.
        within: optional boolean (D, H, W) mask: the mean of the SSIM map over these voxels instead
            of the usual mean over the map (border cropped by skimage).

    Returns:
        SSIM, or NaN if the volume is smaller than 3 voxels on an axis or ``within`` is empty.
    """
    from skimage.metrics import structural_similarity

    win = _win_size(reference.shape[1:])
    if win is None or (within is not None and not within.any()):
        return float("nan")
    a, b = reference.astype(np.float64), test.astype(np.float64)
    if within is None:
        return float(structural_similarity(a, b, data_range=data_range, channel_axis=0, win_size=win))
    _, smap = structural_similarity(a, b, data_range=data_range, channel_axis=0, win_size=win, full=True)
    return float(smap[:, within].mean())


def region_metrics(
    target: np.ndarray, recon: np.ndarray, box: tuple[slice, slice, slice], data_range: float
) -> dict[str, dict[str, float]]:
    """MSE and SSIM of ``recon`` against ``target`` (both (C, D, H, W)) in the box and over the volume."""
    crop = (slice(None), *box)
    t_box, r_box = target[crop], recon[crop]
    return {
        "box": {
            "mse": float(np.mean((t_box.astype(np.float64) - r_box) ** 2)),
            "ssim": ssim_3d(t_box, r_box, data_range),
            "n_voxels": int(t_box[0].size),
        },
        "volume": {
            "mse": float(np.mean((target.astype(np.float64) - recon) ** 2)),
            "ssim": ssim_3d(target, recon, data_range),
            "n_voxels": int(target[0].size),
        },
    }


def counterfactual_metrics(
    original: np.ndarray,
    healthy: np.ndarray,
    lesion: np.ndarray,
    recon: np.ndarray,
    box: tuple[slice, slice, slice],
    data_range: float,
) -> dict[str, dict[str, float]] | None:
    """Persona vs the true healthy volume in the lesion (within the box) and the box; contrast removed.

    Args:
        original, healthy, recon: (C, D, H, W) on the model grid.
        lesion: boolean (C, D, H, W) lesion voxels (per view).
        box: the box slices.
        data_range: intensity range of the scale.

    Returns:
        ``{"lesion": {...}, "box": {...}}`` with ``mse``, ``ssim``, ``n_voxels`` and, for the lesion,
        ``contrast_removed``; ``None`` if no lesion voxel with visible contrast lies in the box.
    """
    crop = (slice(None), *box)
    o, h, r, les = (a[crop].astype(np.float64) for a in (original, healthy, recon, lesion))
    les = les.astype(bool)
    if not les.any():
        return None
    before = float(np.mean(np.abs(o[les] - h[les])))
    if before < MIN_LESION_CONTRAST:
        return None
    after = float(np.mean(np.abs(r[les] - h[les])))
    win = _win_size(h.shape[1:])
    if win is None:
        ssim_les = float("nan")
    else:
        from skimage.metrics import structural_similarity

        _, smap = structural_similarity(h, r, data_range=data_range, channel_axis=0, win_size=win, full=True)
        ssim_les = float(smap[les].mean())
    return {
        "lesion": {
            "mse": float(np.mean((r[les] - h[les]) ** 2)),
            "ssim": ssim_les,
            "n_voxels": int(les.sum()),
            "contrast_removed": 1.0 - after / before,
        },
        "box": {"mse": float(np.mean((r - h) ** 2)), "ssim": ssim_3d(h, r, data_range), "n_voxels": int(h[0].size)},
    }
