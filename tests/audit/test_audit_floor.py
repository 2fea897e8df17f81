"""Whole-volume first-order statistics and the logistic-regression floor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radpersona.audit import FIRST_ORDER_STATS, first_order_floor, first_order_table, whole_volume_first_order
from radpersona.errors import InputDataError


def test_whole_volume_statistics_reproduce_the_uint8_benchmark(benchmark_module):
    volume = np.random.default_rng(0).integers(0, 256, (6, 20, 20)).astype(np.uint8)
    bench = benchmark_module("synthetic_difficulty")
    ours = whole_volume_first_order(volume, value_range=(0, 256))
    assert tuple(ours) == FIRST_ORDER_STATS == tuple(bench.STATS)
    np.testing.assert_allclose(list(ours.values()), bench.first_order(volume), rtol=1e-12)


def test_whole_volume_statistics_are_unit_free_by_default_and_defined_for_constants():
    rng = np.random.default_rng(1)
    volume = rng.gamma(2.0, 1.0, (5, 16, 16))
    a = whole_volume_first_order(volume)
    b = whole_volume_first_order(10 * volume + 3)
    for key in ("skewness", "kurtosis", "entropy"):
        assert b[key] == pytest.approx(a[key])
    assert b["mean"] == pytest.approx(10 * a["mean"] + 3) and b["sd"] == pytest.approx(10 * a["sd"])
    const = whole_volume_first_order(np.full((2, 2, 2), 4.0))
    assert const["sd"] == 0 and const["skewness"] == 0 and const["entropy"] == 0
    with pytest.raises(InputDataError, match="case '0001'"):
        whole_volume_first_order(np.array([[[np.nan]]]), case="0001")


def test_floor_finds_a_global_intensity_change_and_table_names_columns():
    rng = np.random.default_rng(2)
    n = 60
    labels = pd.Series(rng.integers(0, 2, n), index=[f"{i:04d}" for i in range(n)])
    labels.iloc[:2], labels.iloc[-2:] = [0, 1], [0, 1]
    volumes = {
        case: {view: rng.normal(1.0 + 0.5 * y, 0.2, (4, 8, 8)) for view in ("sagittal", "axial")}
        for case, y in labels.items()
    }
    table = first_order_table(volumes)
    assert list(table.columns[:2]) == ["sagittal.mean", "sagittal.sd"] and table.shape == (n, 16)
    train = pd.Series(np.arange(n) < 40, index=labels.index)
    floor = first_order_floor(table, labels, train, n_boot=100, seed=0)
    assert floor.auc_valid > 0.95 and floor.n_train == 40 and floor.n_valid == 20 and floor.n_features == 16
    assert floor.ci_low <= floor.auc_valid <= floor.ci_high
    with pytest.raises(ValueError, match="valid split"):
        first_order_floor(table, labels.where(train, 1), train, n_boot=0)
    bad = dict(volumes)
    bad["0059"] = {"sagittal": volumes["0059"]["sagittal"]}
    with pytest.raises(InputDataError, match="case '0059'"):
        first_order_table(bad)
