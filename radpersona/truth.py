"""Synthetic ground truth brought onto the pipeline's grids.

The synthetic cohort's truth folder (:meth:`radpersona.layout.Layout.synthetic_truth_dir`) holds, per
case and view, the healthy counterpart and the lesion label mask in the *raw* MRNet geometry
(:meth:`radpersona.layout.Layout.truth`). Comparisons with personas and patches need them on the
preprocessed grid (``pre``) or on the registered grid (``reg``). This module applies exactly the
pipeline's own steps: the preprocess resize (nearest neighbour for labels, the configured
interpolation and normalisation for intensities — normalised with the *original* case's statistics
so intensities stay comparable), then NiftyReg's ``reg_resample`` with the case's affine for the
``reg`` branch.

Lesion masks are carried as *lesion fractions*: the binary mask is box-averaged over one output
voxel's footprint before the resize, so the value is (close to) the fraction of a working-grid voxel
covered by lesion and a thin lesion does not vanish between sample points; a voxel counts as lesion
when at least :data:`LESION_FRACTION` of it is covered.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter

from .errors import ConfigError, InputDataError
from .layout import Layout
from .preprocess import centre_crop, resize, to_grid
from .registration import find_niftyreg_tool
from .settings import PreprocessSettings
from .vocabulary import LESION_CODES
from .volume import read_volume

#: A voxel of the working grid is lesion when at least this fraction of it is covered.
LESION_FRACTION = 0.5

#: Lesion codes (:data:`radpersona.vocabulary.LESION_CODES`) that are "the true lesion" of each task.
TASK_LESION_CODES: Mapping[str, tuple[int, ...]] = {
    "acl": (LESION_CODES["acl_tear"],),
    "men": (LESION_CODES["meniscal_tear"],),
    "abn": tuple(LESION_CODES.values()),
}


def truth_array(layout: Layout, case: str, view: str, kind: str) -> np.ndarray:
    """Load the truth array ``layout.truth(case, view, kind)`` (kind: healthy | lesion), no pickles."""
    path = Path(layout.truth(case, view, kind))
    if not path.exists():
        raise InputDataError(f"truth file for {kind!r} is missing", case=case, view=view, path=path)
    return np.load(path, allow_pickle=False)


def normalise_like(raw: np.ndarray, reference_raw: np.ndarray, preprocess: PreprocessSettings) -> np.ndarray:
    """Normalise ``raw`` with the statistics ``preprocess`` would take from ``reference_raw`` (a counterpart on the
    intensity scale of its resized original: the truth, the audit's arrays and the reconstruction study use it).

    Raises:
        ConfigError: ``preprocess.normalisation`` is not one of none, zscore, minmax, percentile.
    """
    method = preprocess.normalisation
    if method == "none":
        return raw.astype(np.float32)
    if method == "zscore":
        return ((raw - reference_raw.mean()) / reference_raw.std()).astype(np.float32)
    if method == "minmax":
        lo, hi = float(reference_raw.min()), float(reference_raw.max())
    elif method == "percentile":
        lo, hi = (float(v) for v in np.percentile(reference_raw, list(preprocess.percentiles)))
    else:
        raise ConfigError(f"preprocess.normalisation {method!r} is not supported by the truth mapping")
    return ((np.clip(raw, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def healthy_on_grid(
    layout: Layout,
    raw_volume: np.ndarray,
    case: str,
    view: str,
    *,
    preprocess: PreprocessSettings,
    reg: str,
) -> np.ndarray:
    """The true healthy counterpart on the grid of the ``reg`` branch, on the original's intensity scale
    (resized like the original, normalised with the statistics of the case's own resized original; for ``reg``
    resampled through the case's affine as reg_aladin resamples the registered volume: cubic, on the
    preprocessed grid of the raw file's spacing).

    Reads ``layout.truth(case, view, "healthy")`` and, for ``reg``, ``layout.raw(case, view)`` (its spacing:
    the affine maps millimetres of the preprocessed grid), ``layout.registered(case, view)`` and
    ``layout.affine(case, view)``.
    """
    healthy = truth_array(layout, case, view, "healthy").astype(np.float32)
    shape, interp, crop = preprocess.shape, preprocess.interpolation, preprocess.crop
    # the resized values do not depend on the spacing; the grid's spacing matters only for reg_resample
    raw_spacing = (1.0, 1.0, 1.0) if reg == "noreg" else read_volume(layout.raw(case, view), case=case, view=view)[1]
    resized, spacing = to_grid(healthy, raw_spacing, shape, interp, crop=crop)
    reference, _ = to_grid(np.asarray(raw_volume, np.float32), raw_spacing, shape, interp, crop=crop)
    resized = normalise_like(resized, reference, preprocess)
    if reg == "noreg":
        return resized
    return reg_resample(
        resized,
        spacing,
        Path(layout.registered(case, view)),
        Path(layout.affine(case, view)),
        case=case,
        view=view,
        interpolation=3,  # cubic, as reg_aladin resamples the registered volumes
    )


def lesion_on_grid(
    layout: Layout,
    case: str,
    view: str,
    *,
    preprocess: PreprocessSettings,
    reg: str,
    codes: Sequence[int] = TASK_LESION_CODES["abn"],
) -> np.ndarray:
    """Boolean lesion mask (lesion codes ``codes``) on the grid of the ``reg`` branch: voxels covered
    by at least :data:`LESION_FRACTION` lesion.

    Reads ``layout.truth(case, view, "lesion")``, ``layout.raw(case, view)`` and, for ``reg``,
    ``layout.registered(case, view)`` and ``layout.affine(case, view)``.
    """
    kwargs = {}
    if reg == "reg":
        kwargs = {"registered_volume": layout.registered(case, view), "affine": layout.affine(case, view)}
    fraction = lesion_fraction(
        truth_lesion_path(layout, case, view),
        layout.raw(case, view),
        case=case,
        view=view,
        codes=codes,
        preprocess_shape=preprocess.shape,
        crop=preprocess.crop,
        **kwargs,
    )
    return fraction >= LESION_FRACTION


def truth_lesion_path(layout: Layout, case: str, view: str) -> Path:
    """The truth lesion mask of a case and view: ``layout.truth(case, view, "lesion")``."""
    return Path(layout.truth(case, view, "lesion"))


def lesion_fraction(
    truth_mask: str | Path,
    raw_volume: str | Path,
    *,
    case: str,
    view: str,
    codes: Sequence[int],
    preprocess_shape: Sequence[int],
    crop: float = 1.0,
    registered_volume: str | Path | None = None,
    affine: str | Path | None = None,
) -> np.ndarray:
    """Fraction of each working-grid voxel covered by a lesion with one of ``codes``.

    Args:
        truth_mask: the raw-geometry code mask (``.npy``, shape of the raw volume).
        raw_volume: the ingested raw volume (its spacing defines the raw grid).
        case, view: named in errors.
        codes: lesion codes that count (e.g. ``(1,)`` for the ACL tear).
        preprocess_shape: ``preprocess.shape`` (slices, rows, cols).
        crop: ``preprocess.crop`` (the kept central fraction of rows and columns; 1: none).
        registered_volume, affine: the registered volume (reference grid) and the case's NiftyReg
            affine; both ``None`` for the noreg branch (then the preprocessed grid is returned).

    Returns:
        float32 array on the registered (or preprocessed) grid, values in [0, 1].

    Raises:
        InputDataError: missing or mismatched files, or ``reg_resample`` failing.
    """
    truth_mask, raw_volume = Path(truth_mask), Path(raw_volume)
    if not truth_mask.exists():
        raise InputDataError("true lesion mask not found", case=case, view=view, path=truth_mask)
    codes_mask = np.load(truth_mask, allow_pickle=False)
    raw, spacing = read_volume(raw_volume, case=case, view=view)
    if codes_mask.shape != raw.shape:
        raise InputDataError(
            f"lesion mask shape {codes_mask.shape} differs from the raw volume's {raw.shape}",
            case=case,
            view=view,
            path=truth_mask,
        )
    binary = centre_crop(np.isin(codes_mask, np.asarray(codes, dtype=codes_mask.dtype)).astype(np.float32), crop)
    footprint = [max(1, int(round(old / new))) for old, new in zip(binary.shape, preprocess_shape)]
    averaged = uniform_filter(binary, size=footprint, mode="constant") if binary.any() else binary
    fraction, pre_spacing = resize(averaged, spacing, preprocess_shape, "linear")
    if (registered_volume is None) != (affine is None):
        raise ValueError("registered_volume and affine must both be given (reg) or both be None (noreg)")
    if registered_volume is None or affine is None:
        return np.clip(fraction, 0.0, 1.0)
    return np.clip(
        reg_resample(fraction, pre_spacing, Path(registered_volume), Path(affine), case=case, view=view), 0.0, 1.0
    )


def reg_resample(
    array: np.ndarray,
    spacing: Sequence[float],
    reference: Path,
    affine: Path,
    *,
    case: str,
    view: str,
    interpolation: int = 1,
) -> np.ndarray:
    """Resample ``array`` (preprocessed grid) onto ``reference`` through ``affine`` with NiftyReg's
    ``reg_resample`` (``interpolation``: 0 nearest, 1 linear, 3 cubic; padding 0)."""
    (out,) = reg_resample_stack([array], spacing, reference, affine, case=case, view=view, interpolation=interpolation)
    return out


def reg_resample_stack(
    arrays: Sequence[np.ndarray],
    spacing: Sequence[float],
    reference: Path,
    affine: Path,
    *,
    case: str,
    view: str,
    interpolation: int = 1,
) -> list[np.ndarray]:
    """:func:`reg_resample` of several arrays of one grid in one ``reg_resample`` call (a 4-D floating
    image: NiftyReg resamples each time point with the same transformation), voxel for voxel the same
    as one call per array."""
    import SimpleITK as sitk

    if not arrays:
        return []
    for path in (reference, affine):
        if not path.exists():
            raise InputDataError("registration output not found", case=case, view=view, path=path)
    shape = np.asarray(arrays[0]).shape
    if any(np.asarray(a).shape != shape for a in arrays):
        raise InputDataError(
            "arrays resampled together must share one grid", case=case, view=view, value=[np.shape(a) for a in arrays]
        )
    images = []
    for array in arrays:
        image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
        image.SetSpacing((float(spacing[2]), float(spacing[1]), float(spacing[0])))
        images.append(image)
    with tempfile.TemporaryDirectory(prefix="truth_") as tmp:
        flo, res = Path(tmp) / "stack_pre.nii", Path(tmp) / "stack_reg.nii"  # uncompressed: temporary files
        sitk.WriteImage(sitk.JoinSeries(images) if len(images) > 1 else images[0], str(flo))
        cmd = [
            str(find_niftyreg_tool("reg_resample")),
            "-ref",
            str(reference),
            "-flo",
            str(flo),
            "-trans",
            str(affine),
            "-res",
            str(res),
            "-inter",
            str(interpolation),
            "-pad",
            "0",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", check=False)
        if proc.returncode != 0 or not res.exists():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise InputDataError(
                f"reg_resample of {len(arrays)} truth arrays failed (exit {proc.returncode}): {tail}",
                case=case,
                view=view,
                path=affine,
            )
        out = sitk.GetArrayFromImage(sitk.ReadImage(str(res))).astype(np.float32)
    if len(arrays) == 1:
        return [out.reshape(out.shape[-3:])]
    return [out[k] for k in range(len(arrays))]
