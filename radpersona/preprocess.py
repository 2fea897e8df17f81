"""Preprocess: resize each view to ``preprocess.shape`` and normalise its intensities.

Resizing resamples the volume's physical extent onto the target grid with SimpleITK
(``linear`` = trilinear, ``bspline`` = cubic B-spline, ``nearest``); the output spacing is chosen so
the physical extent is preserved. Normalisation uses only the volume's own statistics (no
statistics cross cases, so nothing leaks between training and validation):

- ``none``: intensities unchanged;
- ``minmax``: (x - min) / (max - min);
- ``zscore``: (x - mean) / sd;
- ``percentile``: clip to the per-volume percentiles (p_lo, p_hi), then scale to [0, 1].

The method is recorded in the NIfTI header's description field.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import InputDataError
from .settings import PreprocessSettings
from .volume import Spacing, read_volume, write_volume

_INTERPOLATORS = {
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
    "nearest": sitk.sitkNearestNeighbor,
}


def resize(
    array: np.ndarray, spacing: Spacing, shape: Sequence[int], interpolation: str = "linear"
) -> tuple[np.ndarray, Spacing]:
    """Resample ``array`` (slices, rows, cols) to ``shape`` over the same physical extent.

    Returns the resized float32 array and its new spacing (same axis order).
    """
    if interpolation not in _INTERPOLATORS:
        raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATORS)}, not {interpolation!r}")
    image = sitk.GetImageFromArray(array.astype(np.float32, copy=False))
    image.SetSpacing((spacing[2], spacing[1], spacing[0]))
    old_size = np.array(array.shape[::-1], dtype=float)  # x, y, z
    new_size = np.array(list(shape)[::-1], dtype=float)
    old_spacing = np.array(image.GetSpacing())
    new_spacing = old_spacing * old_size / new_size
    # align the outer voxel edges of both grids
    new_origin = np.array(image.GetOrigin()) - 0.5 * old_spacing + 0.5 * new_spacing
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(s) for s in new_size])
    resampler.SetOutputSpacing(new_spacing.tolist())
    resampler.SetOutputOrigin(new_origin.tolist())
    resampler.SetOutputDirection(image.GetDirection())
    resampler.SetInterpolator(_INTERPOLATORS[interpolation])
    resampler.SetDefaultPixelValue(0.0)
    out = sitk.GetArrayFromImage(resampler.Execute(image)).astype(np.float32)
    return out, (float(new_spacing[2]), float(new_spacing[1]), float(new_spacing[0]))


def normalise(
    array: np.ndarray,
    method: str,
    percentiles: Sequence[float] = (0.5, 99.5),
    *,
    case: str | None = None,
    view: str | None = None,
) -> np.ndarray:
    """Normalise intensities with the volume's own statistics (see module docstring)."""
    if method == "none":
        return array.astype(np.float32)
    if method == "minmax":
        lo, hi = float(array.min()), float(array.max())
    elif method == "percentile":
        lo, hi = (float(v) for v in np.percentile(array, list(percentiles)))
    elif method == "zscore":
        mean, sd = float(array.mean()), float(array.std())
        if sd == 0:
            raise InputDataError(
                "cannot z-score a constant volume (standard deviation is 0)", case=case, view=view, value=mean
            )
        return ((array - mean) / sd).astype(np.float32)
    else:
        raise ValueError(f"normalisation must be none, minmax, zscore or percentile, not {method!r}")
    if hi <= lo:
        raise InputDataError(
            f"cannot {method}-normalise a constant volume (range {lo}..{hi})", case=case, view=view, value=hi
        )
    return ((np.clip(array, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def preprocess_volume(
    src: str | Path, dst: str | Path, settings: PreprocessSettings, *, case: str, view: str
) -> dict[str, object]:
    """Resize and normalise one raw volume (``preprocess`` settings); write it atomically; return a
    record of what was done."""
    interpolation, normalisation, percentiles = settings.interpolation, settings.normalisation, settings.percentiles
    array, spacing = read_volume(src, case=case, view=view)
    resized, new_spacing = resize(array, spacing, settings.shape, interpolation)
    out = normalise(resized, normalisation, percentiles, case=case, view=view)
    tag = f"radpersona pre {normalisation}"
    if normalisation == "percentile":
        tag += f" {percentiles[0]:g}-{percentiles[1]:g}"
    write_volume(dst, out, new_spacing, description=f"{tag} {interpolation}")
    return {
        "case": case,
        "view": view,
        "original_shape": list(array.shape),
        "original_spacing": list(spacing),
        "spacing": list(new_spacing),
        "normalisation": normalisation,
        "interpolation": interpolation,
    }
