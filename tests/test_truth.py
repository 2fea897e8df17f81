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


def test_healthy_counterpart_on_the_registered_grid_uses_the_raw_spacing(tmp_path):
    """For a healthy case the true counterpart on the reg branch's grid is the registered volume: the counterpart
    is resampled through the case's affine on the preprocessed grid of the raw file's own (anisotropic) spacing,
    with reg_aladin's cubic interpolation (with unit spacing the largest difference was 1.02, linear 0.19)."""
    from radpersona.registration import register_volume
    from radpersona.settings import RegistrationSettings, read_config
    from radpersona.settings.base import REPO_ROOT

    layout = Layout(str(tmp_path))
    cohort = generate_cohort(tmp_path / "mrnet", layout, n_train=6, n_valid=2, seed=3, matrix=48, slices=(8, 10))
    healthy_cases = cohort[cohort["abn"] == 0]["case"].tolist()
    assert len(healthy_cases) >= 2
    reference_case, case = healthy_cases[:2]
    view = "coronal"
    spacing = (3.0, 0.6, 0.45)  # slices, rows, cols (mm): MRNet-like, far from 1 mm
    for c in (reference_case, case):
        split = cohort.set_index("case").loc[c, "split"]
        raw = np.load(tmp_path / "mrnet" / split / view / f"{c}.npy").astype(np.float32)
        write_volume(layout.raw(c, view), raw, spacing)
        preprocess_volume(layout.raw(c, view), layout.pre(c, view), PRE, case=c, view=view)
    # config.yaml's registration, stopping on a failed registration
    settings = RegistrationSettings.from_config(read_config(REPO_ROOT / "config.yaml")["registration"]).replace(
        on_failure="error"
    )
    register_volume(
        layout.pre(reference_case, view),
        layout.pre(case, view),
        layout.registered(case, view),
        layout.affine(case, view),
        settings=settings,
        case=case,
        view=view,
    )
    affine = np.loadtxt(layout.affine(case, view))
    assert not np.allclose(affine, np.eye(4), atol=1e-3)  # a real transformation to follow
    raw, _ = read_volume(layout.raw(case, view))
    registered, _ = read_volume(layout.registered(case, view))
    healthy = healthy_on_grid(layout, raw, case, view, preprocess=PRE, reg="reg")
    assert healthy.shape == registered.shape
    inside = registered > 0.05  # away from the zero padding at the field of view's edge
    assert inside.mean() > 0.5
    np.testing.assert_allclose(healthy[inside], registered[inside], atol=1e-4)
