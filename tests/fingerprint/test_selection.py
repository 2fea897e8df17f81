"""lambda_u and T chosen on the inner validation split; the sparsity measures of a fingerprint."""

from __future__ import annotations

import numpy as np
import pytest

from radpersona.errors import ConfigError
from radpersona.fingerprint import TrainedFingerprint, fit_fingerprint, top_share
from radpersona.fingerprint.train import selection_key


def _score(auc: float, n_used: float, t: float, lam: float) -> dict[str, float]:
    return {"inner_val_auc": auc, "inner_val_n_used": n_used, "usage_threshold": t, "lambda_u": lam}


def test_selection_prefers_auc_then_sparser_then_larger_t_and_lambda() -> None:
    scores = [_score(0.8, 3, 0.9, 1e-3), _score(0.9, 40, 0.4, 1e-3), _score(0.9, 12, 0.6, 1e-3)]
    assert max(scores, key=selection_key) is scores[2]  # best AUC; among equal AUC, fewer features
    tied = [_score(0.9, 12, 0.6, 1e-3), _score(0.9, 12, 0.8, 1e-3), _score(0.9, 12, 0.8, 1e-2)]
    assert max(tied, key=selection_key) is tied[2]  # same AUC and features: larger T, then larger lambda_u
    # a model that uses no feature is a constant (AUC 0.5): at a tie, one that uses features wins
    empty = [_score(0.5, 0, 0.95, 1e-3), _score(0.5, 7, 0.4, 1e-3), _score(0.5, 30, 0.6, 1e-3)]
    assert max(empty, key=selection_key) is empty[1]
    assert max([_score(0.5, 0, 0.95, 1e-3), _score(0.45, 7, 0.4, 1e-3)], key=selection_key)["inner_val_auc"] == 0.5


def test_each_training_run_chooses_lambda_u_and_t_on_inner_validation_and_records_the_grid(
    make_settings, problem, tmp_path
) -> None:
    images, X, y, names = problem
    settings = make_settings(epochs=2, lambda_u=[1.0e-3, 1.0e-1], usage_threshold=[0.3, 0.5, 0.7])
    model = fit_fingerprint(images, X, y, feature_names=names, settings=settings)
    grid = {(s["lambda_u"], s["usage_threshold"]) for s in model.selection}
    assert grid == {(lam, t) for lam in (1.0e-3, 1.0e-1) for t in (0.3, 0.5, 0.7)}
    chosen = [s for s in model.selection if s["chosen"]]
    assert len(chosen) == 1
    (best,) = chosen
    assert best == max(model.selection, key=selection_key)
    assert (model.lambda_u, model.usage_threshold, model.threshold) == (
        best["lambda_u"],
        best["usage_threshold"],
        best["threshold"],
    )
    # the scores are those of the inner validation cases at each T: recompute the chosen one
    pred = model.predict(images[model.inner_validation_index], X[model.inner_validation_index])
    assert float(pred["n_used"].mean()) == pytest.approx(best["inner_val_n_used"])
    np.testing.assert_array_equal(pred["z"], (pred["u"] > model.usage_threshold).astype(float))
    # the two lambda_u candidates are different networks (the penalty changes training)
    by_lambda = {s["lambda_u"]: s for s in model.selection if s["usage_threshold"] == 0.5}
    assert by_lambda[1.0e-3]["inner_val_bce_soft"] != by_lambda[1.0e-1]["inner_val_bce_soft"]
    model.save(tmp_path / "m.pt")
    loaded = TrainedFingerprint.load(tmp_path / "m.pt")
    assert loaded.selection == model.selection
    assert (loaded.lambda_u, loaded.usage_threshold) == (model.lambda_u, model.usage_threshold)


def test_a_single_value_is_a_grid_of_one(make_settings) -> None:
    settings = make_settings(lambda_u=0.01, usage_threshold=0.4)
    assert settings.lambda_u == (0.01,) and settings.usage_threshold == (0.4,)
    assert settings.to_config()["usage_threshold"] == [0.4]
    with pytest.raises(ConfigError, match="fingerprint.usage_threshold"):
        make_settings(usage_threshold=[0.4, 0.4])
    with pytest.raises(ConfigError, match="fingerprint.lambda_u"):
        make_settings(lambda_u=[])


def test_top_share_is_the_share_of_the_ten_largest_terms() -> None:
    contribution = np.zeros((3, 30))
    contribution[0, :20] = 1.0  # 20 equal terms: the top 10 carry half
    contribution[1, :4] = [-3.0, 1.0, 0.0, 0.0]  # at most 10 terms: all of it
    share = top_share(contribution, 10)
    assert share[0] == pytest.approx(0.5) and share[1] == pytest.approx(1.0)
    assert np.isnan(share[2])  # no feature used
    contribution[0, 0] = -10.0  # one dominant (negative) term
    assert top_share(contribution, 1)[0] == pytest.approx(10.0 / 29.0)


def test_permuted_labels_give_chance_auc_and_are_recorded(make_settings, make_problem, tmp_path) -> None:
    """Negative control: the same problem trained on permuted labels predicts new cases at chance."""
    from sklearn.metrics import roc_auc_score

    images, X, y, names = make_problem(240, 12, seed=4, signal=1.0)
    train, test = np.arange(160), np.arange(160, 240)
    aucs = {}
    for permute in (None, 11):
        settings = make_settings(usage_predictor=False, epochs=3, permute_labels=permute)
        model = fit_fingerprint(None, X[train], y[train], feature_names=names, settings=settings, optimizer="lbfgs")
        aucs[permute] = roc_auc_score(y[test], model.predict(None, X[test])["prob"])
        model.save(tmp_path / "m.pt")
        loaded = TrainedFingerprint.load(tmp_path / "m.pt")
        assert loaded.settings.permute_labels == permute
        assert loaded.settings.labels == ("true" if permute is None else "permuted (seed 11)")
    assert aucs[None] > 0.8, aucs  # the signal is there ...
    assert abs(aucs[11] - 0.5) < 0.15, aucs  # ... and permuted labels cannot find it
