"""Manifest source: NIfTI files and DICOM series folders listed in a CSV, and bad input named clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radpersona.errors import InputDataError
from radpersona.ingest import ingest, list_cases, source_table_files, source_tasks, source_views
from radpersona.layout import Layout
from radpersona.settings import SourceSettings
from radpersona.volume import read_volume

HEADER = "case,split,abn,acl,men,patient,sagittal,coronal,axial\n"


def write_nifti(path: Path, array: np.ndarray, spacing=(3.0, 0.5, 0.6)) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((spacing[2], spacing[1], spacing[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def write_dicom_series(folder: Path, array: np.ndarray, series_uid: str, spacing=(2.0, 0.7, 0.7)) -> None:
    """One DICOM file per slice, sharing ``series_uid``."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(array.shape[0]):
        sl = sitk.GetImageFromArray(array[k].astype(np.int16))
        sl.SetSpacing((spacing[2], spacing[1]))
        for tag, value in [
            ("0020|000e", series_uid),
            ("0020|000d", "1.2.826.0.1.3680043.2.1125.1"),
            ("0008|0060", "MR"),
            ("0020|0032", f"0\\0\\{k * spacing[0]}"),
            ("0020|0013", str(k + 1)),
            ("0020|0037", "1\\0\\0\\0\\1\\0"),
            ("0018|0050", str(spacing[0])),
            ("0008|0018", f"{series_uid}.{k + 1}"),
        ]:
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{series_uid[-4:]}_{k:03d}.dcm"))
        writer.Execute(sl)


def make_manifest(root: Path, n: int = 6, views=("sagittal", "coronal", "axial"), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = [HEADER]
    for i in range(n):
        paths = {}
        for view in ("sagittal", "coronal", "axial"):
            if view not in views:
                paths[view] = ""
                continue
            array = rng.normal(100, 20, (int(rng.integers(4, 7)), 10, 12)).astype(np.float32)
            rel = f"vols/k{i}_{view}.nii.gz"
            write_nifti(root / rel, array)
            paths[view] = rel
        split = "valid" if i >= n - 2 else "train"
        men = "" if i == 1 else str(i % 2)  # one unknown label
        views = ",".join(paths[v] for v in ("sagittal", "coronal", "axial"))
        lines.append(f"k{i},{split},{int(i % 3 > 0)},{i % 2},{men},pt{i // 2},{views}\n")
    (root / "manifest.csv").write_text("".join(lines), encoding="utf-8")
    return root / "manifest.csv"


def source_for(manifest: Path) -> SourceSettings:
    return SourceSettings.from_config({"kind": "manifest", "root": None, "manifest": str(manifest)})


def test_ingest_manifest_of_nifti(tmp_path):
    manifest = make_manifest(tmp_path / "data")
    source = source_for(manifest)
    assert source_views(source) == ["sagittal", "coronal", "axial"]
    layout = Layout(str(tmp_path))
    cohort = ingest(source, layout, folds=2, seed=0)
    table = pd.read_parquet(layout.cohort())
    assert list(table.columns[:11]) == [
        "case",
        "source",
        "split",
        "abn",
        "acl",
        "men",
        "path_sagittal",
        "path_coronal",
        "path_axial",
        "fold",
        "patient",
    ]
    assert table["men"].isna().sum() == 1 and table.loc[table["case"] == "k1", "men"].isna().all()
    assert (table.loc[table["split"] == "valid", "fold"] == -1).all()
    for _, grp in table[table["split"] == "train"].groupby("patient"):
        assert grp["fold"].nunique() == 1
    arr, spacing = read_volume(layout.raw("k0", "coronal"))
    src = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "data" / "vols" / "k0_coronal.nii.gz")))
    np.testing.assert_allclose(arr, src)
    assert spacing == pytest.approx((3.0, 0.5, 0.6))
    assert cohort.loc[0, "spacing_coronal"] == "3x0.5x0.6"
    cases = list_cases(source)
    assert cases["case"].tolist() == [f"k{i}" for i in range(6)]
    # the files each case's ingest reads, known when the workflow is parsed
    assert cases.loc[0, "path_coronal"] == str(tmp_path / "data" / "vols" / "k0_coronal.nii.gz")
    assert source_table_files(source) == [str(manifest)]


def test_manifest_tasks_are_the_labelled_columns(tmp_path):
    manifest = make_manifest(tmp_path / "data")
    assert source_tasks(source_for(manifest)) == ["abn", "acl", "men"]
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    unlabelled = [lines[0]] + [",".join(f if n != 4 else "" for n, f in enumerate(ln.split(","))) for ln in lines[1:]]
    manifest.write_text("".join(unlabelled), encoding="utf-8")
    assert source_tasks(source_for(manifest)) == ["abn", "acl"]  # men empty for every case


def test_single_view_manifest(tmp_path):
    manifest = make_manifest(tmp_path / "data", views=("sagittal",))
    source = source_for(manifest)
    assert source_views(source) == ["sagittal"]
    layout = Layout(str(tmp_path))
    table = ingest(source, layout, folds=2, seed=0)
    assert table["path_axial"].isna().all() and table["path_sagittal"].notna().all()
    raw = Path(layout.raw("k0", "sagittal")).parent
    assert sorted(p.name for p in raw.iterdir())[:2] == ["k0_sagittal.nii.gz", "k1_sagittal.nii.gz"]


def test_dicom_series_folder(tmp_path):
    manifest = make_manifest(tmp_path / "data")
    array = (np.arange(5 * 8 * 9).reshape(5, 8, 9) % 200).astype(np.int16)
    write_dicom_series(tmp_path / "data" / "dicom" / "k0_ax", array, "1.2.826.0.1.3680043.2.1125.7001")
    text = manifest.read_text(encoding="utf-8").replace("vols/k0_axial.nii.gz", "dicom/k0_ax")
    manifest.write_text(text, encoding="utf-8")
    layout = Layout(str(tmp_path))
    ingest(source_for(manifest), layout, folds=2, seed=0)
    arr, spacing = read_volume(layout.raw("k0", "axial"))
    np.testing.assert_array_equal(arr, array.astype(np.float32))
    assert spacing == pytest.approx((2.0, 0.7, 0.7), abs=1e-4)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("empty_path", r"case 'k2', view 'coronal', file '.*manifest.csv': empty path in manifest"),
        ("missing_file", r"case 'k2', view 'coronal', file '.*nothing.nii.gz': manifest path does not exist"),
        ("duplicate_id", r"case 'k1'.*duplicate case id"),
        ("non_binary", r"case 'k3'.*acl label must be 0, 1 or empty \(got '2'\)"),
        ("bad_split", r"case 'k0'.*split must be train or valid \(got 'test'\)"),
        ("two_series", r"case 'k2', view 'axial', file '.*two': folder holds 2 DICOM series.*\(got \["),
        (
            "nan",
            r"case 'k2', view 'sagittal', file '.*k2_sagittal.nii.gz': 1 non-finite voxels.*"
            r"first at index \(1, 2, 3\).*\(got nan\)",
        ),
        ("two_dims", r"case 'k2', view 'sagittal'.*expected a 3-D volume"),
        ("corrupt", r"case 'k2', view 'sagittal', file '.*k2_sagittal.nii.gz': cannot read image"),
    ],
)
def test_bad_manifest_input_is_named(tmp_path, damage, expected):
    data = tmp_path / "data"
    manifest = make_manifest(data)
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    if damage == "empty_path":
        lines[3] = lines[3].replace("vols/k2_coronal.nii.gz", "")
    elif damage == "missing_file":
        lines[3] = lines[3].replace("vols/k2_coronal.nii.gz", "vols/nothing.nii.gz")
    elif damage == "duplicate_id":
        lines.append(lines[2])
    elif damage == "non_binary":
        parts = lines[4].split(",")
        parts[3] = "2"
        lines[4] = ",".join(parts)
    elif damage == "bad_split":
        lines[1] = lines[1].replace(",train,", ",test,")
    elif damage == "two_series":
        rng = np.random.default_rng(3)
        write_dicom_series(data / "two", rng.integers(0, 100, (3, 8, 8)), "1.2.826.0.1.3680043.2.1125.8001")
        write_dicom_series(data / "two", rng.integers(0, 100, (3, 8, 8)), "1.2.826.0.1.3680043.2.1125.8002")
        lines[3] = lines[3].replace("vols/k2_axial.nii.gz", "two")
    elif damage == "nan":
        arr = np.ones((4, 6, 6), np.float32)
        arr[1, 2, 3] = np.nan
        write_nifti(data / "vols" / "k2_sagittal.nii.gz", arr)
    elif damage == "two_dims":
        sitk.WriteImage(sitk.GetImageFromArray(np.ones((6, 6), np.float32)), str(data / "vols" / "k2_sagittal.nii.gz"))
    elif damage == "corrupt":
        (data / "vols" / "k2_sagittal.nii.gz").write_bytes(b"not a nifti")
    manifest.write_text("".join(lines), encoding="utf-8")
    out = Layout(str(tmp_path / "out"))
    with pytest.raises(InputDataError, match=expected):
        ingest(source_for(manifest), out, folds=2, seed=0)
    assert not Path(out.cohort()).exists()
    raw = Path(out.raw("k0", "sagittal")).parent
    assert not raw.exists() or not list(raw.iterdir())
