"""Feature-column selection, per-case fingerprints and the population table."""

from __future__ import annotations

import numpy as np
import pytest

from radpersona.errors import ConfigError, InputDataError
from radpersona.fingerprint import (
    FINGERPRINT_COLUMNS,
    fingerprint_table,
    fit_fingerprint,
    parse_feature_name,
    population_table,
    select_columns,
)

COLUMNS = [
    "sagittal.original.p000.firstorder.Mean",
    "sagittal.persona.p000.firstorder.Mean",
    "sagittal.residual.p000.firstorder.Mean",
    "axial.original.p121.shape.MeshVolume",
    "axial.residual.p121.location.k",
    "coronal.persona.p010.glcm.JointAverage",
]


def test_select_columns_by_representation() -> None:
    assert select_columns(COLUMNS, "path_persona") == [COLUMNS[0], COLUMNS[1], COLUMNS[3], COLUMNS[5]]
    assert select_columns(COLUMNS, "residual") == [COLUMNS[2], COLUMNS[4]]
    assert select_columns(COLUMNS, "original") == [COLUMNS[0], COLUMNS[3]]
    with pytest.raises(InputDataError, match="selects no column"):
        select_columns(COLUMNS[:2], "residual")
    with pytest.raises(ConfigError, match="representation"):
        select_columns(COLUMNS, "persona_only")
    with pytest.raises(InputDataError, match="not"):
        select_columns(["sagittal.original.firstorder.Mean"], "original")


def test_parse_feature_name() -> None:
    key = parse_feature_name("axial.residual.p121.location.k")
    assert key == ("axial", "residual", 1, 2, 1, "location", "k")
    assert parse_feature_name("coronal.persona.p010.firstorder.10Percentile").name == "10Percentile"
    with pytest.raises(InputDataError, match="image"):
        parse_feature_name("axial.mask.p000.firstorder.Mean")


@pytest.fixture
def trained(make_problem, make_settings):
    images, X, y, names = make_problem(40, 24, seed=2)
    model = fit_fingerprint(images, X, y, feature_names=names, settings=make_settings(epochs=2))
    return model, model.predict(images, X), names


def test_fingerprint_reproduces_hard_logit(trained) -> None:
    model, pred, names = trained
    cases = [f"case{i:03d}" for i in range(pred["r"].shape[0])]
    table = fingerprint_table(cases, "acl", pred, model)
    assert list(table.columns) == list(FINGERPRINT_COLUMNS)
    assert (table["z"] == 1).all() and (table["task"] == "acl").all()
    # one row per selected feature, per case
    assert len(table) == int(pred["n_used"].sum())
    assert 0 < len(table) < pred["z"].size  # T = 0.4 drops some features and keeps some
    sums = table.groupby("case", sort=False)["contribution"].sum().reindex(cases).fillna(0.0).to_numpy()
    np.testing.assert_allclose(model.intercept + sums, pred["logit"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(table["contribution"], table["beta"] * table["z"] * table["r"])
    # identity columns decode the wide column name
    row = table.iloc[0]
    key = parse_feature_name(row["feature"])
    assert (row["view"], row["image"], row["i"], row["j"], row["k"], row["family"], row["name"]) == tuple(key)
    # ranks: 1..n_selected by decreasing |contribution| within each case
    for _case, group in table.groupby("case"):
        assert list(group["rank"]) == list(range(1, len(group) + 1))
        assert np.all(np.diff(np.abs(group["contribution"].to_numpy())) <= 0)


def test_fingerprint_top_k(trained) -> None:
    model, pred, names = trained
    cases = [f"c{i}" for i in range(pred["r"].shape[0])]
    full = fingerprint_table(cases, "men", pred, model)
    top = fingerprint_table(cases, "men", pred, model, top_k=3)
    assert top.groupby("case").size().max() == 3
    expected = full[full["rank"] <= 3].reset_index(drop=True)
    np.testing.assert_array_equal(top["feature"].to_numpy(), expected["feature"].to_numpy())
    with pytest.raises(ValueError, match="cases"):
        fingerprint_table(cases[:-1], "men", pred, model)


def test_population_table(trained) -> None:
    model, pred, names = trained
    table = population_table(model)
    assert sorted(table["feature"]) == sorted(names)
    assert list(table["rank"]) == list(range(1, len(names) + 1))
    assert np.all(np.diff(table["abs_beta"].to_numpy()) <= 0)
    beta = dict(zip(model.feature_names, model.beta))
    assert all(beta[f] == b for f, b in zip(table["feature"], table["beta"]))
