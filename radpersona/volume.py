"""NIfTI volume I/O: float32 arrays in (slices, rows, cols) order with spacing, atomic writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .atomic import atomic_output, write_text_atomic
from .errors import InputDataError

Spacing = tuple[float, float, float]


def read_volume(path: str | Path, *, case: str | None = None, view: str | None = None) -> tuple[np.ndarray, Spacing]:
    """Read a volume as float32 (slices, rows, cols) and its spacing in the same axis order (mm).

    Raises:
        InputDataError: unreadable file, not 3-D, or non-finite voxels.
    """
    path = Path(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputDataError(f"cannot read volume: {exc}", case=case, view=view, path=path) from None
    array = sitk.GetArrayFromImage(image)
    if array.ndim != 3:
        raise InputDataError("expected a 3-D volume", case=case, view=view, path=path, value=array.shape)
    array = array.astype(np.float32, copy=False)
    check_finite(array, case=case, view=view, path=path)
    sx, sy, sz = image.GetSpacing()
    return array, (float(sz), float(sy), float(sx))


def read_header(path: str | Path) -> dict[str, str]:
    """Return the NIfTI header's description and any metadata keys SimpleITK exposes."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}


def check_finite(array: np.ndarray, *, case: str | None, view: str | None, path: str | Path | None) -> None:
    """Raise InputDataError if the array has NaN or Inf voxels, naming how many and where."""
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputDataError(
            f"{int(bad.sum())} non-finite voxels, first at index {first}",
            case=case,
            view=view,
            path=path,
            value=float(array[first]),
        )


def check_source_array(array: Any, *, case: str | None, view: str, path: str | Path) -> np.ndarray:
    """Check a volume read from a source file (3-D, every axis >= 2 voxels, numeric, finite); return it as float32.

    Raises:
        InputDataError: naming case, view, file and the bad shape, dtype or voxel.
    """
    if not isinstance(array, np.ndarray) or array.ndim != 3:
        raise InputDataError(
            "expected a 3-D array (slices, rows, cols)",
            case=case,
            view=view,
            path=path,
            value=getattr(array, "shape", type(array).__name__),
        )
    if min(array.shape) < 2:
        raise InputDataError(
            "volume has an axis shorter than 2 voxels", case=case, view=view, path=path, value=array.shape
        )
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputDataError("volume must be numeric", case=case, view=view, path=path, value=str(array.dtype))
    out = array.astype(np.float32)
    check_finite(out, case=case, view=view, path=path)
    return out


def write_volume(
    path: str | Path,
    array: np.ndarray,
    spacing: Spacing = (1.0, 1.0, 1.0),
    *,
    description: str | dict[str, Any] | None = None,
) -> None:
    """Write ``array`` (slices, rows, cols) as float32 NIfTI atomically (temp file, then rename).

    ``description`` (a string or a small dict, stored as compact JSON) goes into the NIfTI header's
    ``descrip`` field (80 characters at most there); longer provenance belongs in a JSON sidecar.

    Raises:
        InputDataError: the array has NaN or Inf voxels (NIfTI readers would turn them into 0).
    """
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.float32)
    # SimpleITK's NIfTI reader turns NaN into 0 silently: refuse to write non-finite voxels at all
    check_finite(array, case=None, view=None, path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((float(spacing[2]), float(spacing[1]), float(spacing[0])))
    if description is not None:
        text = description if isinstance(description, str) else json.dumps(description, separators=(",", ":"))
        image.SetMetaData("ITK_FileNotes", text[:79])  # becomes the NIfTI header's descrip
    with atomic_output(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def write_json_atomic(path: str | Path, payload: Any) -> None:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str))


def load_stack(
    files: Sequence[Sequence[str | Path]], cases: Sequence[str], views: Sequence[str]
) -> tuple[np.ndarray, list[tuple[Spacing, ...]]]:
    """Load ``files[n][v]`` (case ``cases[n]``, view ``views[v]``) as one ``(n, V, D, H, W)`` float32 stack.

    Returns:
        The stack and, per case, the spacing of each view.
    """
    if len(files) != len(cases):
        raise InputDataError(f"{len(files)} file lists for {len(cases)} cases")
    arrays, spacings = [], []
    for case, paths in zip(cases, files, strict=True):
        if len(paths) != len(views):
            raise InputDataError(f"{len(paths)} files for {len(views)} views", case=case)
        loaded = [read_volume(path, case=case, view=view) for view, path in zip(views, paths, strict=True)]
        arrays.append(np.stack([arr for arr, _ in loaded]))
        spacings.append(tuple(sp for _, sp in loaded))
    return np.stack(arrays).astype(np.float32), spacings
