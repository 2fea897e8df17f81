"""A generic cohort: a CSV manifest of NIfTI files or DICOM series folders, read with SimpleITK.

Columns: ``case, split, abn, acl, men, sagittal, coronal, axial`` and optionally ``patient``
(cases of one patient share a fold; default: one patient per case). ``split`` is train or valid;
a label is 0, 1 or empty (unknown: null). A view column holds a NIfTI file (``.nii``/``.nii.gz``,
or any format SimpleITK reads) or a folder with exactly one DICOM series; relative paths are relative
to the manifest's folder. A view that no case has (column absent or empty for every case) is absent
from the source; a view that some cases have and others lack is an error (the DDPM takes the
views as channels of one sample).

Arrays are (slices, rows, cols) as SimpleITK's ``GetArrayFromImage`` gives; the spacing comes from
the header (for DICOM, from the series). NaN/Inf voxels are an error; because NIfTI readers
(nifti1_io, inside SimpleITK) silently replace them by 0, a float NIfTI file's raw voxel data are
checked directly (:func:`nifti_nonfinite`). The image direction is not resampled away: a cohort
acquired in mixed orientations should be resampled to one orientation before ingest.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ..errors import InputDataError
from ..vocabulary import TASKS, VIEWS
from ..volume import Spacing, check_finite
from . import read_source_csv

REQUIRED_COLUMNS = ["case", "split"]


def read_manifest(path: str | Path, cases: Collection[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Read and check a manifest; return (table, views present in canonical order).

    Table columns: case, split, abn, acl, men (Int64, null when empty), patient, and one column per
    present view holding the resolved path. With ``cases``, only those cases' paths must exist (one
    ingest job per case).

    Raises:
        InputDataError: missing file or columns, an empty case id, duplicate ids, a split other than
            train/valid, a label other than 0/1/empty, a view path empty for some cases only, a path
            that does not exist.
    """
    path = Path(path)
    frame = read_source_csv(path, "manifest CSV", REQUIRED_COLUMNS)
    if (frame["case"] == "").any():
        row = int(np.flatnonzero(frame["case"] == "")[0]) + 2
        raise InputDataError(f"empty case id on line {row}", path=path, value="")
    bad_id = frame["case"][~frame["case"].str.fullmatch(r"[A-Za-z0-9_-]+")]
    if len(bad_id):
        raise InputDataError(
            "case id may hold only letters, digits, - and _", case=bad_id.iloc[0], path=path, value=bad_id.iloc[0]
        )
    dup = frame["case"][frame["case"].duplicated()]
    if len(dup):
        raise InputDataError("duplicate case id in manifest", case=dup.iloc[0], path=path, value=dup.iloc[0])
    bad = frame[~frame["split"].isin(["train", "valid"])]
    if len(bad):
        raise InputDataError(
            "split must be train or valid", case=bad["case"].iloc[0], path=path, value=bad["split"].iloc[0]
        )
    table = frame[["case", "split"]].copy()
    for task in TASKS:
        values = frame[task] if task in frame.columns else pd.Series([""] * len(frame))
        bad = frame[~values.isin(["0", "1", ""])]
        if len(bad):
            raise InputDataError(
                f"{task} label must be 0, 1 or empty",
                case=bad["case"].iloc[0],
                path=path,
                value=values[~values.isin(["0", "1", ""])].iloc[0],
            )
        table[task] = pd.array([int(v) if v else pd.NA for v in values], dtype="Int64")
    table["patient"] = (
        frame["patient"].where(frame["patient"] != "", frame["case"]) if "patient" in frame.columns else frame["case"]
    )
    views = []
    for view in VIEWS:
        if view not in frame.columns or (frame[view] == "").all():
            continue
        views.append(view)
        empty = frame[frame[view] == ""]
        if len(empty):
            raise InputDataError(
                "empty path in manifest (the view is present for other cases)",
                case=empty["case"].iloc[0],
                view=view,
                path=path,
                value="",
            )
        resolved = []
        for case, entry in zip(frame["case"], frame[view]):
            target = Path(entry) if Path(entry).is_absolute() else path.parent / entry
            if (cases is None or case in cases) and not target.exists():
                raise InputDataError("manifest path does not exist", case=case, view=view, path=target, value=entry)
            resolved.append(str(target))
        table[view] = resolved
    if not views:
        raise InputDataError("manifest has no view column with paths (sagittal, coronal, axial)", path=path)
    return table.reset_index(drop=True), views


_NIFTI_FLOATS = {16: "f4", 64: "f8"}


def nifti_nonfinite(path: str | Path) -> tuple[int, tuple[int, ...] | None, float | None]:
    """Count NaN/Inf voxels in a float NIfTI-1/2 file's raw data (0 for integer types or other formats).

    Returns (count, first index in (slices, rows, cols) order, its value), or (0, None, None).
    """
    path = Path(path)
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return 0, None, None
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 348:
        return 0, None, None
    for endian in ("<", ">"):
        size = struct.unpack(endian + "i", raw[:4])[0]
        if size == 348:
            dims = struct.unpack(endian + "8h", raw[40:56])
            datatype = struct.unpack(endian + "h", raw[70:72])[0]
            offset = int(struct.unpack(endian + "f", raw[108:112])[0])
            break
        if size == 540:
            datatype = struct.unpack(endian + "h", raw[12:14])[0]
            dims = struct.unpack(endian + "8q", raw[16:80])
            offset = int(struct.unpack(endian + "q", raw[168:176])[0])
            break
    else:
        return 0, None, None
    if datatype not in _NIFTI_FLOATS:
        return 0, None, None
    shape = tuple(int(d) for d in dims[1 : 1 + max(1, dims[0])])
    count = int(np.prod(shape))
    data = np.frombuffer(
        raw, dtype=endian + _NIFTI_FLOATS[datatype], count=count, offset=max(offset, 352 if size == 348 else 544)
    )
    bad = ~np.isfinite(data)
    if not bad.any():
        return 0, None, None
    flat = int(np.flatnonzero(bad)[0])
    first = np.unravel_index(flat, shape, order="F")  # NIfTI stores x fastest
    return int(bad.sum()), tuple(int(i) for i in first[::-1]), float(data[flat])


def read_image(path: str | Path, *, case: str, view: str) -> tuple[np.ndarray, Spacing]:
    """Read a NIfTI (or other SimpleITK) file, or a folder with one DICOM series, as float32 (slices, rows, cols).

    Raises:
        InputDataError: unreadable file, a folder with no DICOM series or with more than one
            (the series UIDs are named), not 3-D, multi-component pixels, non-finite voxels.
    """
    path = Path(path)
    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            series = list(reader.GetGDCMSeriesIDs(str(path)))
            if not series:
                raise InputDataError("folder holds no DICOM series", case=case, view=view, path=path)
            if len(series) > 1:
                raise InputDataError(
                    f"folder holds {len(series)} DICOM series; give one series per folder",
                    case=case,
                    view=view,
                    path=path,
                    value=sorted(series),
                )
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path), series[0]))
            image = reader.Execute()
        else:
            image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputDataError(f"cannot read image ({message})", case=case, view=view, path=path) from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputDataError(
            "expected a scalar image", case=case, view=view, path=path, value=image.GetNumberOfComponentsPerPixel()
        )
    array = sitk.GetArrayFromImage(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise InputDataError(
            "expected a 3-D volume (slices, rows, cols)", case=case, view=view, path=path, value=array.shape
        )
    if min(array.shape) < 2:
        raise InputDataError(
            "volume has an axis shorter than 2 voxels", case=case, view=view, path=path, value=array.shape
        )
    array = array.astype(np.float32)
    check_finite(array, case=case, view=view, path=path)
    if path.is_file():
        n_bad, first, value = nifti_nonfinite(path)
        if n_bad:
            raise InputDataError(
                f"{n_bad} non-finite voxels in the file's data, first at index {first} "
                "(NIfTI readers turn them into 0)",
                case=case,
                view=view,
                path=path,
                value=value,
            )
    spacing = image.GetSpacing()
    return array, (float(spacing[2]), float(spacing[1]), float(spacing[0]))


IDENTITY_DIRECTION: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
"""The direction of an array without one (MRNet, KneeMRI and synthetic volumes, and the raw NIfTI files)."""


def image_direction(path: str | Path, *, case: str | None = None, view: str | None = None) -> tuple[float, ...]:
    """The direction cosines (SimpleITK's row-major 3x3) of a NIfTI file or of a DICOM series folder's first file,
    read from the header only.

    Raises:
        InputDataError: unreadable file, a folder without a DICOM series, a header that is not 3-D.
    """
    path = Path(path)
    target = path
    if path.is_dir():
        series = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path)))
        if not series:
            raise InputDataError("folder holds no DICOM series", case=case, view=view, path=path)
        target = Path(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series[0])[0])
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(target))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputDataError(f"cannot read image header ({message})", case=case, view=view, path=path) from None
    direction = tuple(float(d) for d in reader.GetDirection())
    if len(direction) == 4:  # a 2-D DICOM slice: its in-plane axes; the slice normal is their cross product
        direction = (direction[0], direction[1], 0.0, direction[2], direction[3], 0.0, 0.0, 0.0, 1.0)
    if len(direction) != 9:
        raise InputDataError("expected a 3-D image header", case=case, view=view, path=path, value=len(direction))
    return direction


def orientation_code(direction: tuple[float, ...]) -> str:
    """DICOM orientation letters of a direction (e.g. ``LPS`` for the identity), for messages."""
    return str(sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(list(direction)))
