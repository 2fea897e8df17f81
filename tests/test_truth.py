"""Synthetic truth on the pipeline's grids: identical to the preprocessed original for a healthy case."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radpersona import VIEWS
from radpersona.layout import Layout
from radpersona.preprocess import preprocess_volume
from radpersona.settings import PreprocessSettings
from radpersona.synthetic import generate_cohort
from radpersona.truth import TASK_LESION_CODES, healthy_on_grid, lesion_on_grid, truth_array, truth_lesion_path
from radpersona.volume import read_volume, write_volume

PRE = PreprocessSettings.from_config(
    {"shape": [8, 16, 16], "interpolation": "linear", "normalisation": "percentile", "percentiles": [0.5, 99.5]}
)


def test_truth_on_the_preprocessed_grid(tmp_path):
    layout = Layout(str(tmp_path))
    cohort = generate_cohort(tmp_path / "mrnet", layout, n_train=6, n_valid=2, seed=3, matrix=48, slices=(8, 10))
    healthy_case = cohort[cohort["abn"] == 0]["case"].iloc[0]
    lesion_case = cohort[cohort["abn"] == 1]["case"].iloc[0]
    for case in (healthy_case, lesion_case):
        split = cohort.set_index("case").loc[case, "split"]
        for view in VIEWS:
            raw = np.load(tmp_path / "mrnet" / split / view / f"{case}.npy").astype(np.float32)
            write_volume(layout.raw(case, view), raw)
            preprocess_volume(layout.raw(case, view), tmp_path / "pre.nii.gz", PRE, case=case, view=view)
            pre, _ = read_volume(tmp_path / "pre.nii.gz")
            healthy = healthy_on_grid(layout, raw, case, view, preprocess=PRE, reg="noreg")
            lesion = lesion_on_grid(layout, case, view, preprocess=PRE, reg="noreg")
            assert healthy.shape == pre.shape == lesion.shape
            assert truth_lesion_path(layout, case, view) == Path(layout.truth(case, view, "lesion"))
            assert truth_array(layout, case, view, "lesion").shape == raw.shape
            if case == healthy_case:
                np.testing.assert_allclose(healthy, pre, atol=1e-6)
                assert not lesion.any()
            else:
                assert lesion.dtype == bool


def test_task_lesion_codes():
    """The true lesion of each task, as codes of the truth lesion masks."""
    assert dict(TASK_LESION_CODES) == {"acl": (1,), "men": (2,), "abn": (1, 2, 3, 4, 5)}
