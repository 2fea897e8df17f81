"""Preprocess: crop each view's in-plane field of view, resize it to ``preprocess.shape`` and normalise
its intensities.

Cropping (``preprocess.crop``, a fraction in (0, 1]) keeps the central part of every slice (rows and
columns; every slice of a view is kept), so that the working grid's voxels are smaller on the part of the
field of view that holds the joint; 1 keeps the whole field of view. Resizing resamples the (cropped)
volume's physical extent onto the target grid with SimpleITK (``linear`` = trilinear, ``bspline`` = cubic
B-spline, ``nearest``); the output spacing is chosen so the physical extent is preserved. Normalisation
uses only the volume's own statistics (no statistics cross cases, so nothing leaks between training and
validation):

- ``none``: intensities unchanged;
- ``minmax``: (x - min) / (max - min);
- ``zscore``: (x - mean) / sd;
- ``percentile``: clip to the per-volume percentiles (p_lo, p_hi), then scale to [0, 1].

The method (and a crop below 1) is recorded in the NIfTI header's description field.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import ConfigError, InputDataError
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


def centre_crop(array: np.ndarray, fraction: float, *, axes: Sequence[int] = (1, 2)) -> np.ndarray:
    """Central part of ``array`` keeping ``fraction`` of its length along each of ``axes`` (a view's rows and
    columns by default: ``preprocess.crop``).

    The kept length along an axis of length ``n`` is ``max(1, round(fraction * n))``, starting at
    ``(n - kept) // 2`` (the persona box's centring rule). The voxel spacing is unchanged, so the
    field of view shrinks by ``fraction`` along those axes.

    Raises:
        ConfigError: ``fraction`` outside (0, 1] or an axis the array does not have.
    """
    if not (isinstance(fraction, (int, float)) and 0.0 < float(fraction) <= 1.0):
        raise ConfigError(f"crop fraction must be in (0, 1], not {fraction!r}")
    array = np.asarray(array)
    if float(fraction) == 1.0:
        return array
    index: list[slice] = [slice(None)] * array.ndim
    for axis in axes:
        if not -array.ndim <= axis < array.ndim:
            raise ConfigError(f"crop axis {axis} does not exist in an array of {array.ndim} dimensions")
        n = array.shape[axis]
        kept = max(1, int(round(float(fraction) * n)))
        start = (n - kept) // 2
        index[axis] = slice(start, start + kept)
    return array[tuple(index)]


def to_grid(
    array: np.ndarray,
    spacing: Spacing,
    shape: Sequence[int],
    interpolation: str = "linear",
    *,
    crop: float = 1.0,
) -> tuple[np.ndarray, Spacing]:
    """A raw-geometry array on the working grid: :func:`centre_crop` of its rows and columns by ``crop``
    (``preprocess.crop``), then :func:`resize` to ``shape`` (``preprocess.shape``). Every array brought
    from the raw geometry to the preprocessed one (volumes, truth counterparts, lesion fractions) goes
    through here, so that all of them share one geometry.

    Returns the array on the grid and its spacing (slices, rows, cols).
    """
    return resize(centre_crop(array, crop), spacing, shape, interpolation)


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
    """Crop, resize and normalise one raw volume (``preprocess`` settings); write it atomically; return a
    record of what was done."""
    interpolation, normalisation, percentiles = settings.interpolation, settings.normalisation, settings.percentiles
    array, spacing = read_volume(src, case=case, view=view)
    resized, new_spacing = to_grid(array, spacing, settings.shape, interpolation, crop=settings.crop)
    out = normalise(resized, normalisation, percentiles, case=case, view=view)
    tag = f"radpersona pre {normalisation}"
    if normalisation == "percentile":
        tag += f" {percentiles[0]:g}-{percentiles[1]:g}"
    if settings.crop != 1.0:
        tag += f" crop {settings.crop:g}"
    write_volume(dst, out, new_spacing, description=f"{tag} {interpolation}")
    return {
        "case": case,
        "view": view,
        "original_shape": list(array.shape),
        "original_spacing": list(spacing),
        "spacing": list(new_spacing),
        "normalisation": normalisation,
        "interpolation": interpolation,
        "crop": settings.crop,
    }
