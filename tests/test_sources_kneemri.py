"""KneeMRI source: a tiny dataset made on the fly, the restricted unpickler, labels, split and bad input."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radpersona.errors import InputDataError
from radpersona.folds import healthy_training_cases
from radpersona.ingest import ingest, list_cases, source_table_files, source_tasks, source_views
from radpersona.layout import Layout
from radpersona.settings import KneeMRISettings, SourceSettings
from radpersona.sources.kneemri import load_pck, patient_split, read_metadata
from radpersona.volume import read_volume

SETTINGS = {"acl_positive": "any_tear", "valid_fraction": 0.25, "seed": 5}
HEADER = "examId,seriesNo,aclDiagnosis,kneeLR,roiX,roiY,roiZ,roiWidth,roiHeight,roiDepth,volumeFilename\n"


def make_kneemri(root: Path, n: int = 8, seed: int = 0) -> list[np.ndarray]:
    """metadata.csv + .pck volumes in two sub-folders (as the dataset's vol01.. folders); patient 1000+i//2."""
    rng = np.random.default_rng(seed)
    lines, arrays = [HEADER], []
    for i in range(n):
        exam, series = 1000 + i // 2, 5 + i % 2
        name = f"{exam}-{series}.pck"
        folder = root / f"vol0{1 + i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        array = rng.integers(0, 4096, (int(rng.integers(4, 7)), 12, 12), dtype=np.uint16)
        with open(folder / name, "wb") as fh:
            pickle.dump(array, fh, protocol=2)
        arrays.append(array)
        lines.append(f"{exam},{series},{i % 3},{i % 2},3,4,1,6,5,2,{name}\n")
    (root / "metadata.csv").write_text("".join(lines), encoding="utf-8")
    return arrays


def source_for(root: Path, **kneemri) -> SourceSettings:
    return SourceSettings.from_config({"kind": "kneemri", "root": str(root), "kneemri": {**SETTINGS, **kneemri}})


def python2_pickle(array: np.ndarray) -> bytes:
    """The bytes Python 2 + numpy 1.x write for a uint16 array (protocol 2, data as a BINSTRING)."""
    array = np.ascontiguousarray(array, dtype="<u2")
    data = array.tobytes()
    shape = b"(" + b"".join(b"K" + bytes([s]) for s in array.shape) + b"t"
    return (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01K\x00\x85U\x01b\x87R(K\x01"
        + shape
        + b"cnumpy\ndtype\nq\x02U\x02u2K\x00K\x01\x87R(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T"
        + struct.pack("<I", len(data))
        + data
        + b"tb."
    )


@pytest.mark.parametrize("protocol", ["python2", 0, 2, 4, 5])
def test_array_pickles_of_every_protocol_load(tmp_path, protocol):
    array = (np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6) * 97).astype(np.uint16)
    data = python2_pickle(array) if protocol == "python2" else pickle.dumps(array, protocol=protocol)
    (tmp_path / "v.pck").write_bytes(data)
    np.testing.assert_array_equal(load_pck(tmp_path / "v.pck", case="c"), array.astype(np.float32))


class _Exploit:
    """Its pickle calls os.system when loaded by an unrestricted unpickler."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_ingest_kneemri_cohort(tmp_path):
    root = tmp_path / "kneemri"
    arrays = make_kneemri(root)
    source = source_for(root)
    assert source_views(source) == ["sagittal"]
    layout = Layout(str(tmp_path))
    cohort = ingest(source, layout, folds=2, seed=0)
    table = pd.read_parquet(layout.cohort())
    assert len(table) == 8 and set(table["source"]) == {"kneemri"}
    assert table["path_coronal"].isna().all() and table["path_axial"].isna().all() and table["shape_axial"].isna().all()
    assert table["abn"].isna().all() and table["men"].isna().all()
    # acl = aclDiagnosis > 0; the diagnosis and ROI are kept
    assert (table["acl"] == (table["acl_diagnosis"] > 0).astype(int)).all()
    assert {"roi_x", "roi_depth", "knee", "spacing_sagittal"} <= set(table.columns)
    # patient-level split and folds: both series of an exam share them
    for _, grp in table.groupby("patient"):
        assert grp["split"].nunique() == 1 and grp["fold"].nunique() == 1
    assert set(table["split"]) == {"train", "valid"}
    first = table.iloc[0]
    arr, spacing = read_volume(layout.raw(first["case"], "sagittal"))
    idx = [f"{1000 + i // 2}-{5 + i % 2}" for i in range(8)].index(first["case"])
    np.testing.assert_array_equal(arr, arrays[idx].astype(np.float32))
    assert first["shape_sagittal"] == "x".join(map(str, arrays[idx].shape)) and spacing == (1.0, 1.0, 1.0)
    assert not Path(layout.raw(first["case"], "coronal")).exists()
    cases = list_cases(source)
    assert cases["case"].tolist() == cohort["case"].tolist()
    # the files each case's ingest reads, known when the workflow is parsed
    assert cases["path_sagittal"].tolist() == cohort["path_sagittal"].tolist()
    assert cases["path_coronal"].isna().all()
    assert source_table_files(source) == [str(root / "metadata.csv")]


def test_kneemri_tasks_and_healthy_cases(tmp_path):
    """KneeMRI labels acl only: the per-task rules run acl alone, and "healthy" (the persona's and the
    registration template's training cases) is aclDiagnosis == 0 on train."""
    root = tmp_path / "kneemri"
    make_kneemri(root, n=12)
    source = source_for(root)
    assert source_tasks(source) == ["acl"]
    table = ingest(source, Layout(str(tmp_path)), folds=2, seed=0)
    train = table[table["split"] == "train"]
    expected = sorted(train.loc[train["acl_diagnosis"] == 0, "case"])
    assert expected and healthy_training_cases(table) == expected
    # partial tears are not healthy, whichever acl rule sets the label
    partial = train.loc[train["acl_diagnosis"] == 1, "case"]
    assert len(partial) and not set(partial) & set(healthy_training_cases(table))


def test_complete_tear_rule(tmp_path):
    root = tmp_path / "kneemri"
    make_kneemri(root)
    table = read_metadata(root, KneeMRISettings.from_config({**SETTINGS, "acl_positive": "complete_tear"}))
    assert (table["acl"] == (table["acl_diagnosis"] == 2).astype(int)).all()
    assert table["acl"].sum() < (table["acl_diagnosis"] > 0).sum()


def test_patient_split_is_seeded_and_patient_level():
    patients = pd.Series([f"p{i // 3}" for i in range(60)])
    a = patient_split(patients, 0.25, 1)
    assert a == patient_split(patients, 0.25, 1) and a != patient_split(patients, 0.25, 2)
    frame = pd.DataFrame({"p": patients, "s": a})
    assert (frame.groupby("p")["s"].nunique() == 1).all()
    assert (frame.drop_duplicates("p")["s"] == "valid").sum() == 5


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pck"
    path.write_bytes(pickle.dumps(_Exploit(marker), protocol=2))
    with pytest.raises(
        InputDataError,
        match=r"case 'x', view 'sagittal', file '.*evil.pck': unsafe or invalid pickle: "
        r"refused global (posix|os|nt)\.system",
    ):
        load_pck(path, case="x")
    assert not marker.exists()
    # control: the same bytes under a plain unpickler do run the command (the test can fail)
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("payload", [{"a": np.zeros(3)}, [np.zeros((2, 2, 2))], "text"])
def test_non_array_pickles_are_refused(tmp_path, payload):
    path = tmp_path / "odd.pck"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(InputDataError, match=r"file '.*odd.pck'.*(does not hold a numpy array|refused global)"):
        load_pck(path, case="y")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("corrupt", r"case '1001-5', view 'sagittal', file '.*1001-5.pck': (cannot unpickle|unsafe or invalid pickle)"),
        ("two_dims", r"case '1001-5', view 'sagittal'.*expected a 3-D array.*\(got \(12, 12\)\)"),
        ("nan", r"case '1001-5', view 'sagittal'.*non-finite voxels.*\(got nan\)"),
        ("missing_volume", r"case '1001-5', view 'sagittal'.*volume file is missing"),
        ("volume_without_row", r"case '9999-1', view 'sagittal'.*no row in metadata.csv"),
        ("duplicate", r"case '1000-5'.*duplicate volume"),
        ("bad_diagnosis", r"case '1001-5'.*aclDiagnosis must be 0, 1 or 2 \(got '3'\)"),
        ("missing_column", r"metadata.csv lacks columns \(got \['aclDiagnosis'\]\)"),
    ],
)
def test_bad_kneemri_input_is_named(tmp_path, damage, expected):
    root = tmp_path / "kneemri"
    make_kneemri(root)
    target = next(root.rglob("1001-5.pck"))
    meta = root / "metadata.csv"
    if damage == "corrupt":
        target.write_bytes(b"\x80\x02garbage")
    elif damage == "two_dims":
        target.write_bytes(pickle.dumps(np.zeros((12, 12), np.uint16), protocol=2))
    elif damage == "nan":
        arr = np.zeros((4, 12, 12), np.float32)
        arr[1, 2, 3] = np.nan
        target.write_bytes(pickle.dumps(arr, protocol=2))
    elif damage == "missing_volume":
        target.unlink()
    elif damage == "volume_without_row":
        (root / "vol01" / "9999-1.pck").write_bytes(pickle.dumps(np.zeros((4, 12, 12), np.uint16)))
    elif damage == "duplicate":
        with open(meta, "a", encoding="utf-8") as fh:
            fh.write("1000,5,0,0,3,4,1,6,5,2,1000-5.pck\n")
    elif damage == "bad_diagnosis":
        meta.write_text(meta.read_text(encoding="utf-8").replace("1001,5,2,", "1001,5,3,"))
    elif damage == "missing_column":
        lines = meta.read_text(encoding="utf-8").replace("aclDiagnosis", "diagnosis")
        meta.write_text(lines, encoding="utf-8")
    out = Layout(str(tmp_path / "out"))
    with pytest.raises(InputDataError, match=expected):
        ingest(source_for(root), out, folds=2, seed=0)
    assert not Path(out.cohort()).exists()
    assert not list((tmp_path / "out").rglob("*.nii.gz"))
