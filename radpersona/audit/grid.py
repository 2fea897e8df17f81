"""Bring a case's image, its healthy counterpart and its lesion mask onto a working grid, in memory.

These are the pipeline's own steps on arrays (no files): the preprocess resize and normalisation
(:mod:`radpersona.preprocess`), the truth module's way of carrying healthy counterparts (normalised
with the statistics of the case's own resized original) and lesion masks (as lesion fractions)
onto the preprocessed grid (:mod:`radpersona.truth`, the ``noreg`` branch), plus an in-plane centre
crop for "what if the field of view were smaller" studies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.ndimage import uniform_filter

from radpersona.errors import ConfigError, InputDataError
from radpersona.preprocess import centre_crop, normalise, resize, to_grid
from radpersona.settings import PreprocessSettings
from radpersona.truth import normalise_like

Spacing3 = tuple[float, float, float]

__all__ = [
    "Preprocessed",
    "centre_crop",
    "intensity_scale",
    "lesion_fraction_array",
    "preprocess_with_counterparts",
]


def _check_3d(array: np.ndarray, what: str, case: str | None, view: str | None) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 3 or min(array.shape) < 1:
        raise InputDataError(
            f"{what} must be a non-empty 3-D array (slices, rows, cols)", case=case, view=view, value=array.shape
        )
    return array


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    if len(shape) != 3 or any(int(s) != s or int(s) < 1 for s in shape):
        raise ConfigError(f"preprocess.shape must be three positive integers (slices, rows, cols), not {list(shape)!r}")
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def lesion_fraction_array(
    codes_mask: np.ndarray,
    codes: Sequence[int],
    shape: Sequence[int],
    *,
    crop: float = 1.0,
    case: str | None = None,
    view: str | None = None,
) -> np.ndarray:
    """Fraction of each voxel of a ``shape`` grid covered by a lesion with one of ``codes``.

    The computation of :func:`radpersona.truth.lesion_fraction` for the ``noreg`` branch, on arrays:
    ``b = 1[mask in codes]``; ``b`` is box-averaged over the output voxel's footprint
    ``f_a = max(1, round(n_a / m_a))`` voxels per axis (zero padding), then resampled linearly to
    ``shape`` over the same physical extent (after the ``crop`` of :func:`radpersona.preprocess.centre_crop`,
    ``preprocess.crop``) and clipped to [0, 1]. A voxel counts as lesion when its
    fraction is at least :data:`radpersona.truth.LESION_FRACTION`. When ``shape`` equals the mask's
    shape the binary mask itself is returned (the raw stage).

    Args:
        codes_mask: integer label mask on the raw grid (synthetic: ``radpersona.synthetic.LESION_CODES``).
        codes: the codes that count as lesion.
        shape: the working grid (slices, rows, cols).
        crop: ``preprocess.crop`` (1 for the raw stage).
        case, view: named in errors.

    Returns:
        float32 array of ``shape`` with values in [0, 1].
    """
    mask = _check_3d(codes_mask, "lesion mask", case, view)
    target = _check_shape(shape)
    if len(codes) == 0:
        raise ConfigError("lesion codes must name at least one code")
    binary = centre_crop(np.isin(mask, np.asarray(list(codes))).astype(np.float32), crop)
    if tuple(binary.shape) == target:
        return binary
    footprint = [max(1, int(round(old / new))) for old, new in zip(binary.shape, target)]
    averaged = binary
    if binary.any():
        # the filter only spreads the lesion by its footprint: filter the lesion's bounding box padded
        # by one footprint (zeros around it, as in the whole-volume "constant" mode), same result
        idx = np.nonzero(binary)
        block = tuple(
            slice(max(0, int(i.min()) - f), min(n, int(i.max()) + 1 + f))
            for i, f, n in zip(idx, footprint, binary.shape)
        )
        averaged = np.zeros_like(binary)
        averaged[block] = uniform_filter(binary[block], size=footprint, mode="constant")
    fraction, _ = resize(averaged, (1.0, 1.0, 1.0), target, "linear")
    return np.clip(fraction, 0.0, 1.0).astype(np.float32)


def _settings(preprocess: Mapping[str, Any] | PreprocessSettings) -> PreprocessSettings:
    """Typed ``preprocess`` settings; a mapping is validated (schema and cross-field rules) first."""
    return PreprocessSettings.from_config(preprocess)


def intensity_scale(resized: np.ndarray, preprocess: Mapping[str, Any] | PreprocessSettings) -> float:
    """The factor by which the pipeline's normalisation multiplies intensity *differences*.

    Every normalisation of :func:`radpersona.preprocess.normalise` is ``x -> (x - a) * k`` (then, for
    minmax and percentile, clipped to [0, 1]); this returns ``k``, from the resized image's own
    statistics: 1 (none), ``1 / sd`` (zscore), ``1 / (max - min)`` (minmax), ``1 / (p_hi - p_lo)``
    (percentile, numpy's linear percentiles ``preprocess.percentiles``). Noise carried to the
    preprocessed grid is scaled by ``k`` (see :func:`radpersona.audit.contrast.propagated_noise_sd`).

    Args:
        resized: the resized image (before normalisation).
        preprocess: the ``preprocess`` settings (or their config mapping, validated here).

    Raises:
        ConfigError: an invalid ``preprocess`` section (e.g. an unknown normalisation; names the key).
        InputDataError: a constant volume (no scale exists).
    """
    settings = _settings(preprocess)
    method, percentiles = settings.normalisation, settings.percentiles
    x = np.asarray(resized, dtype=np.float64)
    if method == "none":
        return 1.0
    if method == "zscore":
        spread = float(x.std())
    elif method == "minmax":
        spread = float(x.max() - x.min())
    elif method == "percentile":
        lo, hi = (float(v) for v in np.percentile(x, list(percentiles)))
        spread = hi - lo
    else:
        raise ConfigError(f"preprocess.normalisation must be none, minmax, zscore or percentile, not {method!r}")
    if not spread > 0:
        raise InputDataError(f"cannot {method}-normalise a constant volume", value=spread)
    return 1.0 / spread


class Preprocessed(NamedTuple):
    """A case's image and counterparts on the working grid.

    Attributes:
        image: the preprocessed image (what ``preprocess_volume`` writes).
        counterparts: the counterparts, resized alike and normalised with the image's statistics.
        spacing: working-grid spacing (mm).
        scale: :func:`intensity_scale` of the normalisation (differences are multiplied by it).
    """

    image: np.ndarray
    counterparts: list[np.ndarray]
    spacing: Spacing3
    scale: float


def preprocess_with_counterparts(
    image: np.ndarray,
    counterparts: Sequence[np.ndarray],
    preprocess: Mapping[str, Any] | PreprocessSettings,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    case: str | None = None,
    view: str | None = None,
) -> Preprocessed:
    """Preprocess ``image`` as the pipeline does and its counterparts on the same intensity scale.

    ``image`` is cropped by ``preprocess.crop`` and resized to ``preprocess.shape`` with ``preprocess.interpolation``
    (:func:`radpersona.preprocess.to_grid`) and normalised
    with its own statistics (:func:`radpersona.preprocess.normalise`); each counterpart (e.g. the true
    healthy counterpart, a noise-free rendering) is resized the same way and normalised with the
    statistics of the resized *image* — as :func:`radpersona.truth.healthy_on_grid` does — so that
    ``image_pre - counterpart_pre`` is the lesion signal on the working grid.

    Args:
        image: the case's raw volume (slices, rows, cols).
        counterparts: arrays of the image's shape.
        preprocess: the ``preprocess`` settings (shape, interpolation, normalisation, percentiles), or
            their config mapping (validated: :class:`radpersona.settings.PreprocessSettings`).
        spacing: raw spacing (mm); only the returned spacing depends on it.
        case, view: named in errors.

    Returns:
        :class:`Preprocessed` (image, counterparts, working-grid spacing, normalisation scale).
    """
    image = _check_3d(image, "image", case, view)
    for k, other in enumerate(counterparts):
        other = _check_3d(other, f"counterpart {k}", case, view)
        if other.shape != image.shape:
            raise InputDataError(
                f"counterpart {k} has shape {other.shape}, the image {image.shape}", case=case, view=view
            )
    settings = _settings(preprocess)
    shape = _check_shape(settings.shape)
    raw_spacing = (float(spacing[0]), float(spacing[1]), float(spacing[2]))
    interp, crop = settings.interpolation, settings.crop
    resized, new_spacing = to_grid(np.asarray(image, np.float32), raw_spacing, shape, interp, crop=crop)
    out = normalise(resized, settings.normalisation, settings.percentiles, case=case, view=view)
    others = []
    for other in counterparts:
        other_resized, _ = to_grid(np.asarray(other, np.float32), raw_spacing, shape, interp, crop=crop)
        others.append(normalise_like(other_resized, resized, settings))
    return Preprocessed(out, others, new_spacing, intensity_scale(resized, settings))
