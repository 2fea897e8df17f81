"""MRNet-layout ingest: a tiny cohort made on the fly, and each kind of bad input named clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radpersona import VIEWS
from radpersona.errors import InputDataError
from radpersona.ingest import assign_folds, ingest, read_mrnet_labels
from radpersona.volume import read_volume


def make_mrnet(root: Path, n_train: int = 6, n_valid: int = 3, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    ids = {"train": range(n_train), "valid": range(n_train, n_train + n_valid)}
    for split, cases in ids.items():
        labels = {"abnormal": [], "acl": [], "meniscus": []}
        for c in cases:
            for view in VIEWS:
                folder = root / split / view
                folder.mkdir(parents=True, exist_ok=True)
                np.save(folder / f"{c:04d}.npy", rng.integers(0, 255, (int(rng.integers(5, 9)), 16, 16), dtype=np.uint8))
            acl, men = int(c % 3 == 0), int(c % 2 == 0)
            labels["acl"].append(acl)
            labels["meniscus"].append(men)
            labels["abnormal"].append(int(acl or men or c % 5 == 0))
        for name, values in labels.items():
            (root / f"{split}-{name}.csv").write_text("".join(f"{c:04d},{v}\n" for c, v in zip(cases, values)))


def config_for(root: Path) -> dict:
    return {"source": {"kind": "mrnet", "root": str(root)}, "fingerprint": {"folds": 2, "seed": 0}}


def test_ingest_writes_cohort_and_raw_volumes(tmp_path):
    root = tmp_path / "mrnet"
    make_mrnet(root)
    cohort = ingest(config_for(root), cohort_path=tmp_path / "cohort.parquet", raw_dir=tmp_path / "raw")
    table = pd.read_parquet(tmp_path / "cohort.parquet")
    assert list(table.columns[:11]) == ["case", "source", "split", "abn", "acl", "men", "path_sagittal",
                                        "path_coronal", "path_axial", "fold", "patient"]
    assert len(table) == 9 and (table["split"] == "train").sum() == 6
    assert set(table.loc[table["split"] == "train", "fold"]) == {0, 1}
    assert (table.loc[table["split"] == "valid", "fold"] == -1).all()
    arr, spacing = read_volume(tmp_path / "raw" / "0000_sagittal.nii.gz")
    src = np.load(root / "train" / "sagittal" / "0000.npy")
    np.testing.assert_array_equal(arr, src.astype(np.float32))
    assert spacing == (1.0, 1.0, 1.0)
    assert cohort.loc[0, "shape_sagittal"] == "x".join(map(str, src.shape))


def test_folds_keep_patients_together():
    cohort = pd.DataFrame({"case": [f"{i:04d}" for i in range(12)], "split": ["train"] * 12,
                           "abn": [1, 0] * 6, "acl": [0] * 12, "men": [1, 0, 0] * 4,
                           "patient": [f"p{i // 2}" for i in range(12)]})
    folds = assign_folds(cohort, 3, seed=1)
    for _, grp in cohort.assign(fold=folds).groupby("patient"):
        assert grp["fold"].nunique() == 1
    assert sorted(set(folds)) == [0, 1, 2]
    np.testing.assert_array_equal(folds, assign_folds(cohort, 3, seed=1))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("corrupt_npy", r"case '0001', view 'coronal', file '.*0001.npy': cannot read .npy volume"),
        ("two_dims", r"case '0001', view 'coronal'.*expected a 3-D array.*\(got \(16, 16\)\)"),
        ("nan_voxels", r"case '0001', view 'coronal'.*non-finite voxels.*\(got nan\)"),
        ("missing_view", r"case '0001', view 'axial', file .*: volume file is missing"),
        ("label_without_volume", r"case '0099'.*volume file is missing"),
        ("volume_without_label", r"case '0042', view 'sagittal'.*has no label"),
        ("duplicate_id", r"case '0002'.*duplicate case id"),
        ("non_binary", r"case '0003'.*label must be 0 or 1 \(got '2'\)"),
        ("ids_differ", r"case ids differ between train-abnormal.csv and train-acl.csv"),
    ],
)
def test_bad_input_is_named(tmp_path, damage, expected):
    root = tmp_path / "mrnet"
    make_mrnet(root)
    if damage == "corrupt_npy":
        (root / "train" / "coronal" / "0001.npy").write_bytes(b"not a numpy file")
    elif damage == "two_dims":
        np.save(root / "train" / "coronal" / "0001.npy", np.zeros((16, 16), np.uint8))
    elif damage == "nan_voxels":
        arr = np.zeros((5, 16, 16), np.float32)
        arr[2, 3, 4] = np.nan
        np.save(root / "train" / "coronal" / "0001.npy", arr)
    elif damage == "missing_view":
        (root / "train" / "axial" / "0001.npy").unlink()
    elif damage == "label_without_volume":
        for name in ("abnormal", "acl", "meniscus"):
            with open(root / f"train-{name}.csv", "a") as fh:
                fh.write("0099,0\n")
    elif damage == "volume_without_label":
        np.save(root / "train" / "sagittal" / "0042.npy", np.zeros((5, 16, 16), np.uint8))
    elif damage == "duplicate_id":
        with open(root / "train-abnormal.csv", "a") as fh:
            fh.write("0002,1\n")
    elif damage == "non_binary":
        text = (root / "train-acl.csv").read_text().replace("0003,1", "0003,2").replace("0003,0", "0003,2")
        (root / "train-acl.csv").write_text(text)
    elif damage == "ids_differ":
        lines = (root / "train-acl.csv").read_text().splitlines()[:-1]
        (root / "train-acl.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputDataError, match=expected):
        ingest(config_for(root), cohort_path=tmp_path / "out" / "cohort.parquet", raw_dir=tmp_path / "out" / "raw")
    assert not (tmp_path / "out" / "cohort.parquet").exists()


def test_label_reader_rejects_header_line(tmp_path):
    root = tmp_path / "mrnet"
    make_mrnet(root)
    text = (root / "valid-abnormal.csv").read_text()
    (root / "valid-abnormal.csv").write_text("id,label\n" + text)
    with pytest.raises(InputDataError, match="is there a header line"):
        read_mrnet_labels(root)
