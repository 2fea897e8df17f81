"""The survival rule per view, per case (any view) and per cohort (share of lesion cases)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from radpersona.audit import MIN_CASE_SHARE, MIN_CNR, MIN_VOXELS, case_survival, cohort_survival, survives


def test_survives_needs_voxels_and_contrast():
    assert (MIN_VOXELS, MIN_CNR, MIN_CASE_SHARE) == (4, 1.0, 0.9)
    assert survives(4, 1.0)
    assert survives(10, -1.5)  # hypointense lesions count by |CNR|
    assert not survives(3, 20.0)
    assert not survives(100, 0.99)
    assert not survives(100, float("nan"))
    assert survives(2, 0.5, min_voxels=2, min_cnr=0.5)


def test_case_survival_takes_any_view_and_cohort_survival_the_share():
    frame = pd.DataFrame(
        {
            "case": ["a", "a", "b", "b", "c"],
            "view": ["sagittal", "coronal", "sagittal", "coronal", "axial"],
            "n_voxels": [2, 9, 2, 3, 50],
            "cnr": [5.0, 1.2, 5.0, 5.0, 0.2],
        }
    )
    per_case = case_survival(frame)
    assert per_case.to_dict() == {"a": True, "b": False, "c": False}
    summary = cohort_survival(per_case)
    assert summary["n_cases"] == 3 and summary["n_survive"] == 1
    assert summary["share"] == pytest.approx(1 / 3) and summary["survives"] is False
    assert cohort_survival(pd.Series([True] * 9 + [False]))["survives"] is True
    assert cohort_survival(pd.Series([True] * 8 + [False] * 2))["survives"] is False
    empty = cohort_survival(pd.Series([], dtype=bool))
    assert math.isnan(empty["share"]) and empty["survives"] is False
    with pytest.raises(KeyError, match="cnr"):
        case_survival(frame.drop(columns="cnr"))
