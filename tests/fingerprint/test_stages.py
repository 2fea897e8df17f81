"""The stages of rules/features.smk and rules/fingerprint.smk on a tiny results folder, read through the Layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radpersona.errors import InputDataError
from radpersona.features import read_wide
from radpersona.folds import fold_cases
from radpersona.layout import Layout
from radpersona.localisation import LOCALISATION_COLUMNS
from radpersona.parquet import read_parquet_metadata
from radpersona.stages import features as feature_stages
from radpersona.stages import fingerprint as fingerprint_stages
from radpersona.volume import write_volume

VIEWS = ("sagittal",)
RAW, PRE = (10, 20, 20), (8, 16, 16)
BOX = [0.5, 0.5, 0.5]
TRAIN = [f"{n:04d}" for n in range(8)]
VALID = [f"{n:04d}" for n in range(8, 12)]
RADIOMICS = {
    "grids": [1],
    "images": ["original", "persona"],
    "families": ["firstorder"],
    "bin_width": 0.05,
    "voxel_array_shift": 0.0,
    "shape_mask": "otsu",
    "device": "cpu",
}
PREPROCESS = {"shape": list(PRE), "interpolation": "linear", "normalisation": "minmax", "percentiles": [1.0, 99.0]}


def _cohort() -> pd.DataFrame:
    acl = [0, 0, 1, 1, 0, 0, 1, 1] + [0, 1, 0, 1]  # two of each class per fold
    return pd.DataFrame(
        {
            "case": TRAIN + VALID,
            "split": ["train"] * 8 + ["valid"] * 4,
            "fold": [0, 1] * 4 + [-1] * 4,
            "abn": acl,
            "acl": acl,
            "men": [None] * 12,
        }
    )


def _write_case(layout: Layout, case: str, lesion: bool, rng: np.random.Generator) -> None:
    """The raw volume and true lesion mask (raw grid), and the working volume and persona (noreg branch)."""
    raw = rng.uniform(0, 1, RAW).astype(np.float32)
    mask = np.zeros(RAW, np.uint8)
    if lesion:
        mask[3:7, 6:14, 6:14] = 1
        raw[mask > 0] += 1.0
    for view in VIEWS:
        write_volume(layout.raw(case, view), raw)
        Path(layout.truth(case, view, "lesion")).parent.mkdir(parents=True, exist_ok=True)
        np.save(layout.truth(case, view, "lesion"), mask)
        pre = raw[1:9, 2:18, 2:18].copy()
        write_volume(layout.working("noreg", case, view), pre)
        write_volume(layout.persona("noreg", case, view), (0.9 * pre).astype(np.float32))


@pytest.fixture
def results(tmp_path: Path) -> Layout:
    layout = Layout(str(tmp_path / "results"))
    cohort = _cohort()
    Path(layout.cohort()).parent.mkdir(parents=True)
    cohort.to_parquet(layout.cohort())
    rng = np.random.default_rng(0)
    for case, label in zip(cohort["case"], cohort["acl"], strict=True):
        _write_case(layout, case, bool(label), rng)
    return layout


def test_fold_cases_select_training_and_reported_cases() -> None:
    cohort = _cohort()
    train, reported = fold_cases(cohort, "acl", "1")
    assert train["case"].tolist() == TRAIN[0::2] and reported["case"].tolist() == TRAIN[1::2]
    train, reported = fold_cases(cohort, "acl", "all")
    assert train["case"].tolist() == TRAIN and reported["case"].tolist() == VALID
    assert fold_cases(cohort, "men", "all")[0].empty  # unlabelled cases are dropped
    with pytest.raises(InputDataError, match="'xyz'"):
        fold_cases(cohort, "xyz", "0")


def test_features_fingerprint_and_localisation_stages(results: Layout, make_settings) -> None:
    layout, root = results, results.root
    for case in TRAIN + VALID:
        feature_stages.extract_features(
            results=root,
            reg="noreg",
            grid=1,
            case=case,
            out=layout.features("noreg", 1, case),
            radiomics=RADIOMICS,
            box=BOX,
            normalisation="minmax",
            views=VIEWS,
        )
    feature_stages.assemble_features(
        parts=[layout.features("noreg", 1, c) for c in TRAIN + VALID],
        out=layout.wide("noreg", 1),
        radiomics=RADIOMICS,
        grid=1,
        box=BOX,
        normalisation="minmax",
    )
    wide, meta = read_wide(layout.wide("noreg", 1))
    assert wide.shape == (12, 2 * (19 + 3))
    assert meta["settings"] == {**RADIOMICS, "grid": 1, "box": BOX, "normalisation": "minmax"}
    assert read_parquet_metadata(layout.features("noreg", 1, "0000"))["radiomics"] == RADIOMICS

    settings = make_settings(
        usage_predictor=False, representation="original", epochs=2, threshold_every=1, folds=2
    ).to_config()
    folds = ["0", "1", "all"]
    # a fold trains on training cases only: the valid volumes are not read
    moved = {}
    for case in VALID:
        path = Path(layout.working("noreg", case, VIEWS[0]))
        moved[path] = path.read_bytes()
        path.unlink()
    for fold in folds:
        fingerprint_stages.train_fingerprint(
            results=root,
            reg="noreg",
            grid=1,
            task="acl",
            fold=fold,
            out=layout.fingerprint_model("proposed", "acl", fold),
            settings=settings,
            threads=1,
            views=VIEWS,
        )
    for path, data in moved.items():
        path.write_bytes(data)
    outs = {
        "predictions_out": layout.predictions("proposed", "acl"),
        "fingerprints_out": layout.fingerprints("proposed", "acl"),
        "population_out": layout.population("proposed", "acl"),
    }
    fingerprint_stages.predict(
        results=root,
        experiment="proposed",
        reg="noreg",
        grid=1,
        task="acl",
        folds=folds,
        settings=settings,
        threads=1,
        views=VIEWS,
        **outs,
    )
    predictions = pd.read_parquet(outs["predictions_out"])
    assert sorted(predictions["case"]) == TRAIN + VALID
    assert predictions.groupby("fold")["split"].first().to_dict() == {-1: "valid", 0: "train", 1: "train"}
    assert (predictions["threshold_from"] == "inner").all() and (predictions["n_used"] == 22).all()
    for path in outs.values():
        meta = read_parquet_metadata(path)
        assert meta["settings"] == settings and (meta["experiment"], meta["task"]) == ("proposed", "acl")
        # each fold's (lambda_u, T) grid, scored on its inner validation split, with the one chosen
        assert sorted(meta["selection"]) == ["-1", "0", "1"]
        assert all(sum(score["chosen"] for score in grid) == 1 for grid in meta["selection"].values())
    # every case uses all 22 features (u = 1): its top 10 carry a share below 1; the chosen T and lambda_u
    assert predictions["top10_share"].between(10 / 22, 1.0, inclusive="left").all()
    assert (predictions["labels"] == "true").all()
    assert (predictions["usage_threshold"] == settings["usage_threshold"][0]).all()
    population = pd.read_parquet(outs["population_out"])
    assert (population["lambda_u"] == settings["lambda_u"][0]).all()

    for task in ("abn", "men"):  # the other tasks' tables: abn as acl, men empty (unlabelled)
        for name in ("fingerprints", "population"):
            frame = pd.read_parquet(getattr(layout, name)("proposed", "acl"))
            (frame.iloc[:0] if task == "men" and name == "fingerprints" else frame).to_parquet(
                getattr(layout, name)("proposed", task)
            )
    out = Path(root) / "tables" / "localisation_proposed.csv"
    fingerprint_stages.localisation(
        results=root, experiment="proposed", out=out, preprocess=PREPROCESS, reg="noreg", box=BOX, grid=1
    )
    table = pd.read_csv(out, dtype={"case": str})
    assert tuple(table.columns) == LOCALISATION_COLUMNS
    positives = sorted(_cohort().query("acl == 1")["case"])
    assert sorted(table.loc[table["task"] == "acl", "case"]) == positives
    assert (table["lesion_patches"] == 1).all() and (table["top_share"] == 1.0).all()
