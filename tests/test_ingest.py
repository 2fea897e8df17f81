"""MRNet-layout ingest: a tiny cohort made on the fly, each kind of bad input named clearly, per-case jobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radpersona import VIEWS
from radpersona.errors import ConfigError, InputDataError
from radpersona.ingest import assign_folds, ingest, list_cases, source_table_files, source_views
from radpersona.layout import Layout
from radpersona.parquet import read_parquet_metadata
from radpersona.settings import SourceSettings, SyntheticSettings, read_config
from radpersona.sources.mrnet import MRNetLayout, read_mrnet_labels
from radpersona.stages import ingest as ingest_stages
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
                np.save(
                    folder / f"{c:04d}.npy", rng.integers(0, 255, (int(rng.integers(5, 9)), 16, 16), dtype=np.uint8)
                )
            acl, men = int(c % 3 == 0), int(c % 2 == 0)
            labels["acl"].append(acl)
            labels["meniscus"].append(men)
            labels["abnormal"].append(int(acl or men or c % 5 == 0))
        for name, values in labels.items():
            (root / f"{split}-{name}.csv").write_text(
                "".join(f"{c:04d},{v}\n" for c, v in zip(cases, values)), encoding="utf-8"
            )


def source_for(root: Path, **extra) -> SourceSettings:
    return SourceSettings.from_config({"kind": "mrnet", "root": str(root), **extra})


def ingest_all(source: SourceSettings, results: Path) -> pd.DataFrame:
    """Ingest every case into the results folder ``results`` (two folds, seed 0)."""
    return ingest(source, Layout(str(results)), folds=2, seed=0)


def test_ingest_writes_cohort_and_raw_volumes(tmp_path):
    root = tmp_path / "mrnet"
    make_mrnet(root)
    layout = Layout(str(tmp_path))
    cohort = ingest_all(source_for(root), tmp_path)
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
    assert len(table) == 9 and (table["split"] == "train").sum() == 6
    assert set(table.loc[table["split"] == "train", "fold"]) == {0, 1}
    assert (table.loc[table["split"] == "valid", "fold"] == -1).all()
    arr, spacing = read_volume(layout.raw("0000", "sagittal"))
    src = np.load(root / "train" / "sagittal" / "0000.npy")
    np.testing.assert_array_equal(arr, src.astype(np.float32))
    assert spacing == (1.0, 1.0, 1.0)
    assert cohort.loc[0, "shape_sagittal"] == "x".join(map(str, src.shape))


def test_folds_keep_patients_together():
    cohort = pd.DataFrame(
        {
            "case": [f"{i:04d}" for i in range(12)],
            "split": ["train"] * 12,
            "abn": [1, 0] * 6,
            "acl": [0] * 12,
            "men": [1, 0, 0] * 4,
            "patient": [f"p{i // 2}" for i in range(12)],
        }
    )
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
            with open(root / f"train-{name}.csv", "a", encoding="utf-8") as fh:
                fh.write("0099,0\n")
    elif damage == "volume_without_label":
        np.save(root / "train" / "sagittal" / "0042.npy", np.zeros((5, 16, 16), np.uint8))
    elif damage == "duplicate_id":
        with open(root / "train-abnormal.csv", "a", encoding="utf-8") as fh:
            fh.write("0002,1\n")
    elif damage == "non_binary":
        text = (
            (root / "train-acl.csv").read_text(encoding="utf-8").replace("0003,1", "0003,2").replace("0003,0", "0003,2")
        )
        (root / "train-acl.csv").write_text(text, encoding="utf-8")
    elif damage == "ids_differ":
        lines = (root / "train-acl.csv").read_text(encoding="utf-8").splitlines()[:-1]
        (root / "train-acl.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=expected):
        ingest_all(source_for(root), tmp_path / "out")
    assert not Path(Layout(str(tmp_path / "out")).cohort()).exists()


def test_label_reader_rejects_header_line(tmp_path):
    root = tmp_path / "mrnet"
    make_mrnet(root)
    text = (root / "valid-abnormal.csv").read_text(encoding="utf-8")
    (root / "valid-abnormal.csv").write_text("id,label\n" + text, encoding="utf-8")
    with pytest.raises(InputDataError, match="is there a header line"):
        read_mrnet_labels(root)


def test_source_views_and_list_cases(tmp_path, repo):
    root = tmp_path / "mrnet"
    make_mrnet(root)
    source = source_for(root)
    assert source_views(source) == list(VIEWS)
    cases = list_cases(source)
    assert cases["case"].tolist() == [f"{i:04d}" for i in range(9)]
    # the source files of each case, known when the workflow is parsed (its ingest_case job declares them)
    assert cases.loc[7, "path_axial"] == str(root / "valid" / "axial" / "0007.npy")
    assert source_table_files(source) == [
        str(root / f"{split}-{name}.csv") for split in ("train", "valid") for name in ("abnormal", "acl", "meniscus")
    ]
    assert "0004" not in list_cases(source.replace(exclude=("0004",)))["case"].tolist()
    synthetic = SyntheticSettings.from_config(read_config(repo / "config.yaml")["synthetic"]).replace(
        n_train=3, n_valid=2
    )
    generated = list_cases(
        SourceSettings.from_config({"kind": "synthetic", "root": str(root), "exclude": ["0001"]}), synthetic
    )
    assert generated["case"].tolist() == ["0000", "0002", "0003", "0004"]
    assert generated["path_coronal"].tolist()[-1] == MRNetLayout(str(root)).volume("valid", "coronal", "0004")
    with pytest.raises(ConfigError, match="source.kind"):
        SourceSettings.from_config({"kind": "dicomweb"})


def test_per_case_ingest_isolates_a_bad_case(tmp_path):
    """What `snakemake --keep-going` relies on: one ingest_case job per case; a bad case fails alone, leaving
    nothing."""
    root = tmp_path / "mrnet"
    make_mrnet(root)
    (root / "train" / "axial" / "0001.npy").write_bytes(b"truncated")
    source = source_for(root)
    results = str(tmp_path / "results")
    layout = Layout(results)
    raw = Path(layout.raw("0000", "sagittal")).parent  # the folder of the raw volumes
    records = []
    for case in list_cases(source)["case"]:
        if case == "0001":
            with pytest.raises(InputDataError, match=r"case '0001', view 'axial', file '.*0001.npy': cannot read .npy"):
                ingest_stages.ingest_case(source=source.to_config(), case=case, results=results)
            continue
        ingest_stages.ingest_case(source=source.to_config(), case=case, results=results)
        records.append(layout.ingest_record(case))
    # sagittal and coronal of 0001 were written before axial failed: removed again
    assert not list(raw.glob("0001_*")) and not Path(layout.ingest_record("0001")).exists()
    assert len(list(raw.glob("*.nii.gz"))) == 8 * 3
    # the bad exam is then left out by name; the cohort is built from the other cases
    excluding = source.replace(exclude=("0001",))
    ingest_stages.ingest(source=excluding.to_config(), folds=2, seed=0, records=records, results=results)
    cohort = pd.read_parquet(layout.cohort())
    assert "0001" not in set(cohort["case"]) and len(cohort) == 8
    assert read_parquet_metadata(layout.cohort())["exclude"] == ["0001"]
    assert cohort["spacing_axial"].eq("1x1x1").all()
    # ingest of everything with the exclusion succeeds too
    ingest_all(excluding, tmp_path / "all")
    with pytest.raises(ConfigError, match=r"source.exclude.*'0999'"):
        ingest_all(source.replace(exclude=("0999",)), tmp_path / "x")


def test_failed_ingest_leaves_no_raw_volumes(tmp_path):
    root = tmp_path / "mrnet"
    make_mrnet(root)
    (root / "valid" / "sagittal" / "0008.npy").write_bytes(b"bad")  # the last case: all others were written first
    with pytest.raises(InputDataError, match="case '0008'"):
        ingest_all(source_for(root), tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.nii.gz"))


def test_synthetic_cohort_ingests_through_the_mrnet_reader(tmp_path):
    from radpersona.synthetic import generate_cohort

    layout = Layout(str(tmp_path))
    generate_cohort(tmp_path / "mrnet", layout, n_train=4, n_valid=2, seed=3, matrix=32, slices=(4, 6))
    cohort = ingest_all(SourceSettings.from_config({"kind": "synthetic", "root": str(tmp_path / "mrnet")}), tmp_path)
    assert (
        len(cohort) == 6
        and set(cohort["source"]) == {"synthetic"}
        and cohort["truth_dir"].eq(layout.synthetic_truth_dir()).all()
    )
    assert len(list(Path(layout.raw("0000", "sagittal")).parent.glob("*.nii.gz"))) == 18
