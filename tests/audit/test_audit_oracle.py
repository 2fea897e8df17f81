"""Single-feature AUCs and the oracle ceiling of patch radiomics (selected on train, scored on valid)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from radpersona.audit import lesion_patch_sets, modal_patch, oracle_patch_auc, patch_columns, single_feature_aucs


def test_single_feature_aucs_match_sklearn_and_known_cases():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    values = pd.DataFrame({"label": y.astype(float), "minus": -y, "const": 1.0, "noise": rng.normal(size=50)})
    values["ties"] = np.round(values["noise"] + y, 0)
    auc = single_feature_aucs(values, y)
    assert auc["label"] == 1.0 and auc["minus"] == 0.0 and auc["const"] == 0.5
    for col in ("noise", "ties"):
        assert auc[col] == pytest.approx(roc_auc_score(y, values[col]))
    with pytest.raises(ValueError, match="both classes"):
        single_feature_aucs(values, np.ones(50, int))
    values.loc[3, "noise"] = np.nan
    with pytest.raises(ValueError, match="'noise'"):
        single_feature_aucs(values, y)


def test_patch_columns_and_modal_patch():
    cols = [
        "axial.original.p010.firstorder.Mean",
        "axial.persona.p010.shape.MeshVolume",
        "axial.original.p010.location.i",
        "axial.original.p011.firstorder.Mean",
        "coronal.original.p010.firstorder.Mean",
    ]
    assert patch_columns(cols, view="axial", patch=(0, 1, 0)) == cols[:2]
    assert patch_columns(cols, view="axial", patch=(0, 1, 0), images=["persona"]) == [cols[1]]
    assert patch_columns(cols, view="axial", patch=(0, 1, 0), families=["firstorder"]) == [cols[0]]
    assert modal_patch([(1, 0, 0), None, (0, 1, 1), (1, 0, 0)]) == (1, 0, 0)
    assert modal_patch([(1, 0, 0), (0, 1, 1)]) == (0, 1, 1)  # tie: first in (i, j, k) order
    assert modal_patch([None, None]) is None


def _cohort(seed: int = 0, n: int = 80):
    rng = np.random.default_rng(seed)
    cases = [f"{i:04d}" for i in range(n)]
    y = pd.Series(rng.integers(0, 2, n), index=cases)
    y.iloc[:2] = [0, 1]
    y.iloc[-2:] = [0, 1]
    train = pd.Series(np.arange(n) < n // 2, index=cases)
    table = pd.DataFrame(index=pd.Index(cases, name="case"))
    for view in ("sagittal", "coronal"):
        for patch in ("p000", "p001"):
            table[f"{view}.original.{patch}.firstorder.Mean"] = rng.normal(size=n)
            table[f"{view}.original.{patch}.location.i"] = 0.0
    # the lesion patch of coronal is p001: its feature separates the classes, negatively
    table["coronal.original.p001.firstorder.Mean"] = -2.0 * y + rng.normal(0, 0.3, n)
    # a perfect feature elsewhere must not be used: it is not in the patch that holds the lesion
    table["sagittal.original.p000.firstorder.Mean"] = y.astype(float)
    main = {c: {"coronal": (0, 0, 1), "sagittal": (0, 0, 1)} for c in cases}
    # validation positives' patches must not matter
    for c in cases[n // 2 :]:
        main[c] = {"coronal": (0, 0, 0), "sagittal": (0, 0, 0)}
    return table, y, train, main


def test_oracle_ceiling_selects_on_train_in_the_lesion_patch():
    table, y, train, main = _cohort()
    result = oracle_patch_auc(table, y, train, main, n_boot=200, seed=1)
    assert result.pooling == "modal"
    assert result.lesion_patches == {"coronal": ((0, 0, 1),), "sagittal": ((0, 0, 1),)}
    assert result.n_candidates == 4  # two views x one first-order column x two signs; location left out
    assert result.feature == "coronal.original.p001.firstorder.Mean" and result.sign == -1
    assert result.auc_train > 0.95 and result.auc_valid > 0.95
    assert result.ci_low <= result.auc_valid <= result.ci_high
    assert result.optimistic_feature == result.feature
    assert result.optimistic_auc_valid >= result.auc_valid
    assert result.n_train + result.n_valid == len(table)


def test_oracle_ceiling_can_be_below_one_half_when_the_training_choice_does_not_generalise():
    table, y, train, main = _cohort(seed=3)
    feature = "coronal.original.p001.firstorder.Mean"
    # on train the feature says "positive = low", on valid the opposite
    table[feature] = np.where(train, -1.0, 1.0) * y + np.random.default_rng(4).normal(0, 0.1, len(y))
    table["sagittal.original.p001.firstorder.Mean"] = 0.0
    result = oracle_patch_auc(table, y, train, main, n_boot=0)
    assert result.feature == feature and result.sign == -1
    assert result.auc_valid < 0.05
    assert result.optimistic_auc_valid > 0.95


def test_oracle_ceiling_errors_name_the_problem():
    table, y, train, main = _cohort()
    with pytest.raises(ValueError, match="valid split"):
        oracle_patch_auc(table, y.where(train, 0), train, main, n_boot=0)
    with pytest.raises(ValueError, match="no training positive"):
        oracle_patch_auc(table, y, train, {}, n_boot=0)
    with pytest.raises(ValueError, match="missing for cases"):
        oracle_patch_auc(table, y.iloc[1:], train, main, n_boot=0)
    with pytest.raises(ValueError, match="pooling"):
        oracle_patch_auc(table, y, train, main, pooling="mean", n_boot=0)


def test_lesion_patch_sets_keep_patches_of_enough_positives():
    main = {
        "a": {"coronal": (0, 1, 0), "axial": None},
        "b": {"coronal": (0, 1, 1)},
        "c": {"coronal": (0, 1, 0)},
        "d": {"coronal": (1, 1, 1)},
        "e": {"coronal": (0, 1, 0)},
    }
    assert lesion_patch_sets(main, ["a", "b", "c", "d", "e"], min_share=0.2) == {
        "coronal": ((0, 1, 0), (0, 1, 1), (1, 1, 1))
    }
    assert lesion_patch_sets(main, ["a", "b", "c", "d", "e", "z"], min_share=0.5) == {"coronal": ((0, 1, 0),)}
    assert lesion_patch_sets(main, ["a"], min_share=0.1) == {"coronal": ((0, 1, 0),)}


def test_max_pooling_follows_a_lesion_that_moves_between_patches():
    rng = np.random.default_rng(5)
    n = 120
    cases = [f"{i:04d}" for i in range(n)]
    y = pd.Series(np.tile([0, 1], n // 2), index=cases)
    side = pd.Series(rng.integers(0, 2, n), index=cases)  # 0: lesion in p000, 1: in p001
    train = pd.Series(np.arange(n) < 80, index=cases)
    table = pd.DataFrame(index=pd.Index(cases, name="case"))
    for k in (0, 1):
        hit = (y == 1) & (side == k)
        table[f"coronal.residual.p00{k}.firstorder.Maximum"] = np.where(hit, 1.0, 0.0) + rng.normal(0, 0.1, n)
    main = {c: {"coronal": (0, 0, int(side[c]))} for c in cases if y[c] == 1}
    modal = oracle_patch_auc(table, y, train, main, n_boot=0)
    pooled = oracle_patch_auc(table, y, train, main, pooling="max", min_share=0.2, n_boot=0)
    # one patch sees only its own half of the positives; the pooled maximum sees all of them
    assert 0.6 < modal.auc_valid < 0.9
    assert pooled.auc_valid > 0.98 and pooled.sign == 1
    assert pooled.lesion_patches == {"coronal": ((0, 0, 0), (0, 0, 1))}
    assert pooled.feature == "coronal.residual.p000|p001.firstorder.Maximum"
    assert pooled.n_candidates == 2
