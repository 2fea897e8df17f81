"""Rule train_baseline's stage: folds from the cohort, inner thresholds, the fingerprint's prediction schema."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from radpersona.errors import ConfigError
from radpersona.evaluation import metrics_table
from radpersona.folds import fold_cases
from radpersona.layout import Layout
from radpersona.stages.baselines import train_baseline
from radpersona.vocabulary import IMAGE_KINDS, VIEWS
from radpersona.volume import write_volume

torch.set_num_threads(1)
SETTINGS = {
    "run": ["lr_l2", "elnet"],
    "seed": 5,
    "classical": {
        "features_from": "proposed",
        "variance_threshold": 0.0,
        "inner_folds": 2,
        "C": [0.1, 1.0],
        "rf_trees": 10,
        "rf_max_depth": [3],
        "rf_min_samples_leaf": [1],
    },
    "cnn": {"volumes": "pre", "epochs": 1, "learning_rate": 1e-3, "weight_decay": 0.0, "device": "cpu"},
    "mrnet": {"width": 2, "init_weights": None, "fusion_folds": 2},
    "elnet": {
        "K": 1,
        "norm": "instance",
        "blur_filter": 3,
        "dropout": 0.0,
        "view": {"abn": "sagittal", "acl": "sagittal", "men": "coronal"},
    },
}


@pytest.fixture
def tiny(tmp_path):
    rng = np.random.default_rng(0)
    n_train, n_valid = 24, 8
    cases = [f"{i:04d}" for i in range(n_train + n_valid)]
    acl = np.r_[np.tile([0, 1], n_train // 2), np.tile([0, 1], n_valid // 2)]
    cohort = pd.DataFrame(
        {
            "case": cases,
            "split": ["train"] * n_train + ["valid"] * n_valid,
            "acl": acl,
            "fold": [(i // 2) % 2 for i in range(n_train)] + [-1] * n_valid,
        }
    )
    cohort.loc[3, "acl"] = np.nan  # an unlabelled case is left out
    cohort.to_parquet(tmp_path / "cohort.parquet")
    names = [f"{v}.{img}.p000.firstorder.{f}" for v in VIEWS for img in IMAGE_KINDS for f in ("Mean", "Energy")]
    X = rng.normal(0, 1, (len(cases), len(names)))
    X[:, 0] += 2 * np.nan_to_num(acl.astype(float))
    wide = pd.DataFrame(X, columns=names)
    wide.insert(0, "case", cases)
    wide.to_parquet(tmp_path / "table.parquet")
    vol_dir = tmp_path / "volumes" / "pre"
    for case in cases:
        for view in VIEWS:
            arr = rng.normal(0, 1, (int(rng.integers(4, 7)), 24, 24)).astype(np.float32)
            write_volume(vol_dir / f"{case}_{view}.nii.gz", arr, (1.0, 1.0, 1.0))
    return tmp_path, cohort


def _check_schema(path, cohort):
    pred = pd.read_parquet(path)
    assert list(pred.columns) == [
        "case",
        "task",
        "fold",
        "split",
        "label",
        "prob",
        "threshold",
        "pred",
        "model",
        "experiment",
        "threshold_from",
    ]
    labelled = cohort[cohort["acl"].notna()]
    assert sorted(pred["case"]) == sorted(labelled["case"])  # every labelled case reported once
    valid = pred[pred["split"] == "valid"]
    assert set(valid["fold"]) == {-1}
    train = pred[pred["split"] == "train"].merge(cohort[["case", "fold"]], on="case", suffixes=("", "_cohort"))
    assert (train["fold"] == train["fold_cohort"]).all()  # the cohort's folds
    assert (pred["pred"] == (pred["prob"] >= pred["threshold"]).astype(int)).all()
    assert (pred.groupby("fold")["threshold"].nunique() == 1).all()
    return pred


def test_classical_baseline_stage(tiny):
    root, cohort = tiny
    out = Layout(str(root)).predictions("lr_l2", "acl")
    train_baseline(
        results=root,
        baseline="lr_l2",
        task="acl",
        baselines=SETTINGS,
        inner_validation=0.25,
        threads=1,
        table=root / "table.parquet",
        columns={"representation": "original", "families": None},
    )
    pred = _check_schema(out, cohort)
    meta = json.loads(pq.read_schema(out).metadata[b"radpersona"])
    assert meta["n_columns"] == 6 and set(meta["folds"]) == {"0", "1", "all"}
    assert "best_params" in meta["folds"]["0"] and meta["folds"]["all"]["seed"] == 5 * 100 + 99
    metrics = metrics_table([pred], n_boot=20, seed=0)
    assert set(metrics["split"]) == {"cv", "valid"} and (metrics["experiment"] == "lr_l2").all()


def test_cnn_baseline_stage_records_scratch_training(tiny):
    root, cohort = tiny
    out = Layout(str(root)).predictions("elnet", "acl")
    train_baseline(
        results=root,
        baseline="elnet",
        task="acl",
        baselines=SETTINGS,
        inner_validation=0.25,
        threads=1,
    )
    _check_schema(out, cohort)
    meta = json.loads(pq.read_schema(out).metadata[b"radpersona"])
    assert meta["init"] == ["scratch"]
    assert meta["volumes"] == str(root / "volumes" / "pre") and meta["settings"] == SETTINGS


def test_classical_baseline_reads_only_the_column_selection_of_the_fingerprint(tiny):
    root, _ = tiny
    with pytest.raises(ConfigError, match="'fingerprint.representation'"):
        train_baseline(
            results=root,
            baseline="lr_l2",
            task="acl",
            baselines=SETTINGS,
            inner_validation=0.25,
            threads=1,
            table=root / "table.parquet",
            columns={"representation": "persona_only", "families": None},
        )


def test_fold_cases_all_is_train_against_valid(tiny):
    _, cohort = tiny
    train, reported = fold_cases(cohort, "acl", "all")
    assert (
        (train["split"] == "train").all() and (reported["split"] == "valid").all() and "0003" not in set(train["case"])
    )
    train, reported = fold_cases(cohort, "acl", "1")
    assert (reported["fold"] == 1).all() and (train["fold"] == 0).all()
