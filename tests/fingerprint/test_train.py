"""Training of the fingerprint model: Eq. 8, protocol, persistence and learning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from radpersona.device import CudaUnavailableError
from radpersona.errors import ConfigError, InputDataError
from radpersona.fingerprint import TrainedFingerprint, cross_validate, fit_fingerprint, inner_validation_split
from radpersona.fingerprint.model import FingerprintNet
from radpersona.fingerprint.train import _penalties


def test_classical_model_matches_sklearn_logistic_regression(make_settings, make_problem) -> None:
    """u = 1, squared penalty, full batch to convergence == sklearn's weighted, L2-penalised LR.

    Ours minimises (1/n) sum_i w_i l_i + lam ||beta||^2 with w_i = pos_weight for positives.
    Multiplying by 1/(2 lam n) gives 0.5 ||beta||^2 + C sum_i w_i l_i with C = 1 / (2 lam n), which
    is scikit-learn's objective with class_weight {0: 1, 1: pos_weight} (intercept unpenalised).
    """
    images, X, y, names = make_problem(60, 15, seed=1, signal=0.4)
    y[:10] = 1  # imbalance, so that pos_weight != 1 matters
    lam = 0.05
    settings = make_settings(
        usage_predictor=False, beta_penalty="squared", lambda_beta=lam, epochs=5, threshold_every=5
    )
    model = fit_fingerprint(None, X, y, feature_names=names, settings=settings, optimizer="lbfgs")
    assert model.pos_weight != pytest.approx(1.0)

    train = model.train_index
    r = model.standardise(X[train])
    n = train.size
    reference = LogisticRegression(
        C=1.0 / (2.0 * lam * n),
        class_weight={0: 1.0, 1: model.pos_weight},
        fit_intercept=True,
        tol=1e-12,
        max_iter=100_000,
    ).fit(r, y[train])
    np.testing.assert_allclose(model.beta, reference.coef_[0], atol=1e-3)
    assert model.intercept == pytest.approx(float(reference.intercept_[0]), abs=1e-3)
    # the penalty matters here: an unpenalised fit has visibly different coefficients
    assert (
        np.abs(reference.coef_[0]).sum()
        < 0.9
        * np.abs(
            LogisticRegression(C=1e6, class_weight={0: 1.0, 1: model.pos_weight}, max_iter=100_000)
            .fit(r, y[train])
            .coef_[0]
        ).sum()
    )


def test_gradients_reach_usage_predictor_and_beta(make_settings, problem) -> None:
    images, X, y, names = problem
    model = fit_fingerprint(images, X, y, feature_names=names, settings=make_settings(epochs=1))
    net = model.net
    net.train()
    net.zero_grad()
    r = torch.from_numpy(model.standardise(X[:8]).astype(np.float32))
    logit, u = net(torch.from_numpy(images[:8]), r)
    cfg = make_settings()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.from_numpy(y[:8]).float())
    penalty_u, penalty_beta = _penalties(net, u, cfg, cfg.lambda_u[0])
    (loss + penalty_u + penalty_beta).backward()
    assert net.beta.grad is not None and net.beta.grad.abs().sum() > 0
    assert net.intercept.grad is not None
    predictor = net.usage_predictor
    assert predictor is not None
    assert predictor.backbone.conv1.weight.grad is not None
    assert predictor.backbone.conv1.weight.grad.abs().sum() > 0
    assert predictor.linear.weight.grad.abs().sum() > 0


def test_classifier_has_only_one_coefficient_per_feature_and_an_intercept(make_settings, problem) -> None:
    images, X, y, names = problem
    model = fit_fingerprint(images, X, y, feature_names=names, settings=make_settings(epochs=1))
    classifier = {k: v.shape for k, v in model.net.named_parameters() if not k.startswith("usage_predictor.")}
    assert classifier == {"beta": torch.Size([len(names)]), "intercept": torch.Size([])}
    pred = model.predict(images, X)
    expected = (pred["z"] * pred["r"]) @ model.beta + model.intercept
    np.testing.assert_allclose(pred["logit"], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pred["prob"], 1 / (1 + np.exp(-expected)), atol=1e-12)
    np.testing.assert_allclose(pred["logit_soft"], (pred["u"] * pred["r"]) @ model.beta + model.intercept)


def test_standardisation_and_threshold_use_training_fold_only(make_settings, problem) -> None:
    images, X, y, names = problem
    settings = make_settings(epochs=2, threshold_every=1, usage_threshold=[0.3, 0.5])
    first = cross_validate(images, X, y, feature_names=names, settings=settings)
    held_out = first[0].test_index
    X_changed = X.copy()
    X_changed[held_out] = X_changed[held_out] * 100.0 + 7.0
    second = cross_validate(images, X_changed, y, feature_names=names, settings=settings)
    a, b = first[0].model, second[0].model
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.sd, b.sd)
    assert a.threshold == b.threshold
    assert a.selection == b.selection  # lambda_u and T are chosen without the held-out cases too
    np.testing.assert_array_equal(a.beta, b.beta)
    # the statistics are those of the training rows, and the other folds did see the change
    train = first[0].train_index
    np.testing.assert_allclose(a.mean, X[train].mean(axis=0))
    np.testing.assert_allclose(a.sd, X[train].std(axis=0))
    assert not np.allclose(first[1].model.mean, second[1].model.mean)
    # held-out predictions use the training statistics: r of a changed case moves accordingly
    np.testing.assert_allclose(second[0].prediction["r"], (X_changed[held_out] - a.mean) / a.sd)
    # the inner validation split is disjoint from the rows in the loss and stratified
    assert np.intersect1d(a.train_index, a.inner_validation_index).size == 0
    assert set(y[train][a.inner_validation_index]) == {0, 1}


def test_without_usage_predictor_u_and_z_are_one(make_settings, problem) -> None:
    images, X, y, names = problem
    model = fit_fingerprint(
        None, X, y, feature_names=names, settings=make_settings(usage_predictor=False, usage_threshold=0.9)
    )
    assert model.net.usage_predictor is None
    assert sum(p.numel() for p in model.net.parameters()) == len(names) + 1
    pred = model.predict(None, X)
    assert np.all(pred["u"] == 1.0) and np.all(pred["z"] == 1.0)
    assert np.all(pred["n_used"] == len(names))
    np.testing.assert_allclose(pred["prob"], pred["prob_soft"])
    # images are accepted and ignored
    np.testing.assert_array_equal(model.predict(images, X)["prob"], pred["prob"])


def test_save_load_round_trip(make_settings, problem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, X, y, names = problem
    model = fit_fingerprint(images, X, y, feature_names=names, settings=make_settings(epochs=2))
    path = tmp_path / "models" / "acl.pt"
    model.save(path)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))

    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = TrainedFingerprint.load(path)
    assert calls == [True]
    before, after = model.predict(images, X), loaded.predict(images, X)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    assert loaded.feature_names == names
    assert loaded.threshold == model.threshold and loaded.seed == model.seed
    assert loaded.history == model.history
    np.testing.assert_array_equal(loaded.train_index, model.train_index)
    # the file keeps the settings as the plain ``fingerprint`` section; loading rebuilds the same object
    assert real_load(path, map_location="cpu", weights_only=True)["settings"] == model.settings.to_config()
    assert loaded.settings == model.settings


def test_same_seed_same_predictions_different_seed_differs(make_settings, problem) -> None:
    images, X, y, names = problem
    settings = make_settings(epochs=2)
    a = fit_fingerprint(images, X, y, feature_names=names, settings=settings).predict(images, X)
    b = fit_fingerprint(images, X, y, feature_names=names, settings=settings).predict(images, X)
    c = fit_fingerprint(images, X, y, feature_names=names, settings=settings, seed=4).predict(images, X)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(a["u"], c["u"])


def test_learns_predictive_feature_on_held_out_data(make_settings, make_problem) -> None:
    """One informative feature among ten; hard selection at the paper's T = 0.4 still ranks well."""
    images, X, y, names = make_problem(240, 10, seed=5, signal=2.0)
    train, test = np.arange(180), np.arange(180, 240)
    settings = make_settings(epochs=20, learning_rate=1e-2, batch_size=16, usage_threshold=0.4, threshold_every=5)
    model = fit_fingerprint(images[train], X[train], y[train], feature_names=names, settings=settings)
    pred = model.predict(images[test], X[test])
    assert roc_auc_score(y[test], pred["prob"]) > 0.9
    assert roc_auc_score(y[test], pred["prob_soft"]) > 0.9
    assert np.argmax(np.abs(model.beta)) == 0
    assert 0 < pred["n_used"].mean() < len(names)
    assert 0.0 < model.threshold < 1.0
    assert [h["epoch"] for h in model.history if "threshold" in h] == [5, 10, 15, 20]


def test_inner_split_is_stratified_and_seeded() -> None:
    y = np.array([0] * 30 + [1] * 10)
    train, val = inner_validation_split(y, 0.2, seed=1)
    assert (y[val] == 0).sum() == 6 and (y[val] == 1).sum() == 2
    assert np.union1d(train, val).size == y.size
    np.testing.assert_array_equal(val, inner_validation_split(y, 0.2, seed=1)[1])
    with pytest.raises(InputDataError, match="class 1"):
        inner_validation_split(np.array([0, 0, 0, 1]), 0.2, seed=1)


def test_invalid_inputs_are_named(make_settings, problem) -> None:
    images, X, y, names = problem
    X_nan = X.copy()
    X_nan[3, 5] = np.nan
    with pytest.raises(InputDataError, match=names[5].replace(".", r"\.")):
        fit_fingerprint(images, X_nan, y, feature_names=names, settings=make_settings())
    with pytest.raises(ConfigError, match="beta_penalty"):
        fit_fingerprint(images, X, y, feature_names=names, settings=make_settings(beta_penalty="l1"))
    with pytest.raises(ConfigError, match=r"fingerprint\.extra': unknown key"):
        fit_fingerprint(images, X, y, feature_names=names, settings=make_settings(extra=1))
    with pytest.raises(InputDataError, match="images"):
        fit_fingerprint(None, X, y, feature_names=names, settings=make_settings())
    if not torch.cuda.is_available():
        with pytest.raises(CudaUnavailableError, match=r"fingerprint\.device is 'cuda'.*CUDA"):
            fit_fingerprint(images, X, y, feature_names=names, settings=make_settings(device="cuda"))


def test_init_weights_load_matching_backbone_tensors(make_settings, problem, tmp_path: Path) -> None:
    images, X, y, names = problem
    donor = fit_fingerprint(images, X, y, feature_names=names, settings=make_settings(epochs=1, seed=11))
    backbone = donor.net.usage_predictor.backbone
    state = {f"module.{k}": v for k, v in backbone.state_dict().items()}
    state["module.conv1.weight"] = torch.zeros(4, 1, 7, 7, 7)  # one input channel: shape mismatch
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": state}, path)
    model = fit_fingerprint(
        images, X, y, feature_names=names, settings=make_settings(epochs=1, init_weights=str(path), learning_rate=1e-9)
    )
    n_backbone = len(backbone.state_dict())
    assert model.init_weights_loaded == n_backbone - 1
    loaded = model.net.usage_predictor.backbone.state_dict()
    torch.testing.assert_close(
        loaded["layer4.1.conv2.weight"], backbone.state_dict()["layer4.1.conv2.weight"], atol=1e-6, rtol=0
    )
    assert not torch.allclose(loaded["conv1.weight"], backbone.state_dict()["conv1.weight"])
    with pytest.raises(ConfigError, match="does not exist"):
        fit_fingerprint(
            images, X, y, feature_names=names, settings=make_settings(init_weights=str(tmp_path / "no.pth"))
        )


def test_beta_penalties_follow_eq8(make_settings) -> None:
    from radpersona.fingerprint.model import FingerprintNet

    net = FingerprintNet(n_features=3, usage_predictor=None)
    with torch.no_grad():
        net.beta.copy_(torch.tensor([3.0, 0.0, 4.0]))
    u = torch.ones(2, 3)
    _, l2 = _penalties(net, u, make_settings(lambda_beta=0.5), 1.0)
    _, sq = _penalties(net, u, make_settings(lambda_beta=0.5, beta_penalty="squared"), 1.0)
    assert float(l2.detach()) == pytest.approx(2.5) and float(sq.detach()) == pytest.approx(12.5)


def test_usage_penalty_is_the_l1_norm_summed_over_features(make_settings, problem) -> None:
    """Eq. 8: lambda_u ||u_i||_1, the sum over the N features, averaged over the cases (not mean |u|)."""
    images, X, y, names = problem
    net = fit_fingerprint(images, X, y, feature_names=names, settings=make_settings(epochs=1)).net
    u = torch.tensor([[0.5, 0.25, 0.0, 1.0], [0.1, 0.1, 0.1, 0.1]])
    penalty_u, _ = _penalties(net, u, make_settings(), 0.2)
    assert float(penalty_u) == pytest.approx(0.2 * (1.75 + 0.4) / 2)
    classical = FingerprintNet(n_features=4, usage_predictor=None)
    assert float(_penalties(classical, torch.ones(2, 4), make_settings(), 0.2)[0]) == 0.0
