"""Synthetic truth on the pipeline's grids: identical to the preprocessed original for a healthy case."""

from __future__ import annotations

import numpy as np

from radpersona import VIEWS
from radpersona.preprocess import preprocess_volume
from radpersona.synthetic import generate_cohort
from radpersona.truth import healthy_on_grid, lesion_on_grid
from radpersona.volume import read_volume, write_volume

PRE = {"shape": [8, 16, 16], "interpolation": "linear", "normalisation": "percentile", "percentiles": [0.5, 99.5]}


def test_truth_on_the_preprocessed_grid(tmp_path):
    cohort = generate_cohort(
        tmp_path / "mrnet", tmp_path / "truth", n_train=6, n_valid=2, seed=3, matrix=48, slices=(8, 10)
    )
    healthy_case = cohort[cohort["abn"] == 0]["case"].iloc[0]
    lesion_case = cohort[cohort["abn"] == 1]["case"].iloc[0]
    for case in (healthy_case, lesion_case):
        split = cohort.set_index("case").loc[case, "split"]
        for view in VIEWS:
            raw = np.load(tmp_path / "mrnet" / split / view / f"{case}.npy").astype(np.float32)
            raw_path = tmp_path / "volumes" / "raw" / f"{case}_{view}.nii.gz"
            write_volume(raw_path, raw)
            preprocess_volume(raw_path, tmp_path / "pre.nii.gz", case=case, view=view, **PRE)
            pre, _ = read_volume(tmp_path / "pre.nii.gz")
            healthy = healthy_on_grid(
                tmp_path / "truth", raw, case, view, results=tmp_path, preprocess=PRE, reg="noreg"
            )
            lesion = lesion_on_grid(tmp_path / "truth", case, view, results=tmp_path, preprocess=PRE, reg="noreg")
            assert healthy.shape == pre.shape == lesion.shape
            if case == healthy_case:
                np.testing.assert_allclose(healthy, pre, atol=1e-6)
                assert not lesion.any()
            else:
                assert lesion.dtype == bool
