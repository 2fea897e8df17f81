"""fingerprint.families: selecting radiomic families from the wide table (table 8 of the paper)."""

from __future__ import annotations

import numpy as np
import pytest

from radpersona.errors import ConfigError, InputDataError
from radpersona.fingerprint import fit_fingerprint, select_columns
from radpersona.fingerprint.trained import stored_settings

COLUMNS = [
    "sagittal.original.p000.firstorder.Mean",
    "sagittal.original.p000.shape.MeshVolume",
    "sagittal.original.p000.glcm.JointAverage",
    "sagittal.original.p000.location.i",
    "sagittal.persona.p000.glcm.JointAverage",
    "sagittal.residual.p000.firstorder.Mean",
]


def test_families_select_columns_and_keep_location():
    assert select_columns(COLUMNS, "original", ["firstorder", "shape"]) == COLUMNS[:2] + [COLUMNS[3]]
    assert select_columns(COLUMNS, "path_persona", ["glcm"]) == [COLUMNS[2], COLUMNS[3], COLUMNS[4]]
    assert select_columns(COLUMNS, "original", None) == COLUMNS[:4]
    with pytest.raises(InputDataError, match="ngtdm"):
        select_columns(COLUMNS, "original", ["ngtdm"])
    with pytest.raises(ConfigError, match="texture"):
        select_columns(COLUMNS, "original", ["texture"])


def test_settings_accept_families_and_fit_rejects_other_families(make_settings):
    assert make_settings().families is None
    saved_before_families = {k: v for k, v in make_settings().to_config().items() if k != "families"}
    assert stored_settings(saved_before_families).families is None  # optional key in saved models
    cfg = make_settings(families=["firstorder", "shape"])
    assert cfg.families == ("firstorder", "shape") and cfg.to_config()["families"] == ["firstorder", "shape"]
    with pytest.raises(ConfigError, match="fingerprint.families"):
        make_settings(families=["colour"])
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.tile([0, 1], 10)
    with pytest.raises(ConfigError, match="glcm"):
        fit_fingerprint(
            None,
            X,
            y,
            feature_names=COLUMNS[:3],
            settings=make_settings(usage_predictor=False, families=["firstorder"]),
        )
