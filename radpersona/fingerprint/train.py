"""Joint training of the usage predictor and the logistic regression (paper, Sec. 4.3, Eq. 8).

Objective per mini-batch ``B`` of the inner-training cases (Eq. 8)::

    mean_{i in B} w_i BCE(c_i, sigmoid(sum_n beta_n u_in r_in + b))     # w_i = n_neg/n_pos for positives
      + lambda_u * mean_{i in B} sum_n |u_in|                            # ||u_i||_1: sparsity of usage (L1)
      + lambda_beta * ||beta||_2          (beta_penalty "l2", the paper's non-squared norm)
                    or ||beta||_2^2       (beta_penalty "squared")

optimised with Adam on ``alpha`` (usage predictor) and ``beta, b`` jointly. The usage penalty is the
paper's ``lambda_u ||u||_1``: the sum over the ``N`` features, averaged over the cases of the batch
(so its weight grows with the feature pool, as in the paper). Without a usage predictor ``u = 1`` is a
constant and the usage penalty is left out (reported as 0).

Why the default is ``beta_penalty: squared`` with ``lambda_beta = 0.1``: the logit depends on ``beta_n u_n``
only, so the penalties decide how that product splits. For a feature with effective weight ``w = beta u``, the
cheapest split under ``lambda_u u + lambda_beta beta^2`` has ``u = (2 lambda_beta w^2 / lambda_u)^(1/3)``, capped
at 1 by the sigmoid: a feature worth using settles at ``u = 1`` and the rest are pushed to ``u = 0`` by a
``|w|^(2/3)`` (bridge) penalty, sparser than the lasso, so one threshold ``T`` separates used from unused. With a
penalty too weak for ``lambda_u`` (the non-squared norm at ``lambda_beta = 1e-3``) the same split gives
``u ~ sqrt(lambda_beta |w| / lambda_u)``, far below any ``T``: u shrinks, beta grows, and hard selection drops
every feature. Measured on a development cohort, not on a reported one (control preset with synthetic seed 11:
pooled out-of-fold and valid ACL AUC of 48 cases, 20 positives; chance 0.5, one-sided Mann-Whitney p; top-10
share in the lesion's patches against its chance share 0.17): l2 at 1e-3, 20 epochs at learning rate 1e-2: 0.57
(p 0.20), 279 features, 0.20; squared at 0.1, 100 epochs: 0.80 (p 2e-4), 5 features, 0.49; l2 at 1.0: 0.57
(p 0.19); squared at 1.0: 0.76 (p 1e-3). The usage layer needs about 200 optimiser steps to settle (40 epochs of 2
steps at 1e-2: 0.64, p 0.05, 328 features). The permuted-label control of this setting is the DAG test
``tests/test_controls.py`` (seed 7: pooled 0.48).

Protocol (Sec. 5.2.4):

* the features are standardised with the mean and standard deviation (``ddof=0``; ``sd == 0`` is
  replaced by 1) of the training fold given to :func:`fit_fingerprint` and nothing else;
* a stratified, seeded fraction ``inner_validation`` of the training fold is held out from the
  gradient updates; every ``threshold_every`` epochs, and after the last epoch, the decision
  threshold is re-estimated on it by Youden's J of the hard-selection probabilities
  (``z = 1[u > T]``, Eq. 10) — never on reported cases;
* ``lambda_u`` and ``T`` are chosen on the same inner validation split from their candidate lists
  (``fingerprint.lambda_u``, ``fingerprint.usage_threshold``): one network is trained per
  ``lambda_u`` (same seed, same inner split), each is scored after its final epoch at every ``T`` by
  the inner-validation AUC of the hard-selection probabilities, and the pair with the highest AUC is
  kept; ties go to a pair whose model uses a feature over one that uses none (a constant predictor, whose
  AUC of 0.5 a small inner split often ties), then to the sparser pair (fewer features used on average by the
  inner-validation cases), then to the larger ``T``, then to the larger ``lambda_u``. The kept model is that
  pair's network (trained on the inner-training cases, as every candidate), with its threshold; the scores of the
  whole grid are stored with it (:attr:`TrainedFingerprint.selection`);
* ``pos_weight = n_neg / n_pos`` is computed on the inner-training cases (those in the loss);
* the model kept is the one after the final epoch, with the threshold estimated after that epoch.

Randomness: the inner split draws from ``numpy.random.default_rng(seed)``, the network's
initialisation and dropout from ``torch.manual_seed(seed)``, the order of the mini-batches from
``numpy.random.default_rng(seed + 1)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from radpersona.device import as_layout, place, resolve_device
from radpersona.errors import ConfigError
from radpersona.fingerprint.inputs import check_inputs, check_labels, standardisation
from radpersona.fingerprint.model import FingerprintNet, build_fingerprint_net, load_backbone_weights
from radpersona.fingerprint.splits import batches, inner_validation_split, stratified_folds
from radpersona.fingerprint.tables import parse_feature_name
from radpersona.fingerprint.threshold import youden_threshold
from radpersona.fingerprint.trained import DEVICE_KEY, TrainedFingerprint, sigmoid, usage
from radpersona.progress import Progress
from radpersona.settings import FingerprintSettings
from radpersona.vocabulary import LOCATION_FAMILY, BetaPenalty

logger = logging.getLogger("radpersona")

Optimizer = Literal["adam", "lbfgs"]


# ----------------------------------------------------------------------------- step 1: the data


@dataclass(frozen=True)
class TrainingData:
    """One training fold, checked and standardised, with its inner split.

    Attributes:
        images: float32 ``(n, V, D, H, W)``, or ``None`` without a usage predictor.
        y: labels 0/1, int64 ``(n,)``.
        mean, sd: the fold's standardisation statistics.
        r: standardised features ``(X - mean) / sd``, float64 ``(n, N)``.
        train_index, validation_index: the inner-training rows (in the loss) and the inner-validation
            rows (the threshold is chosen on them).
        pos_weight: ``n_neg / n_pos`` of the inner-training rows.
    """

    images: np.ndarray | None
    y: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    r: np.ndarray
    train_index: np.ndarray
    validation_index: np.ndarray
    pos_weight: float

    @property
    def n_views(self) -> int:
        """Input channels of the usage predictor (0 without images)."""
        return 0 if self.images is None else int(self.images.shape[1])


def _check_families(feature_names: Sequence[str], cfg: FingerprintSettings) -> None:
    """The feature columns belong to ``fingerprint.families`` (and the location indices)."""
    if cfg.families is None:
        return
    allowed = set(cfg.families) | {LOCATION_FAMILY}
    stray = sorted({parse_feature_name(c).family for c in feature_names} - allowed)
    if stray:
        raise ConfigError(
            f"fingerprint.families is {list(cfg.families)} but the feature columns include families {stray}: "
            "select the columns with select_columns(..., families=settings['families'])"
        )


def prepare_training_data(
    images: np.ndarray | None,
    X: np.ndarray,
    y: np.ndarray,
    *,
    feature_names: Sequence[str],
    settings: FingerprintSettings,
    seed: int,
) -> TrainingData:
    """Check the inputs, standardise with the fold's statistics and split off the inner validation rows.

    Raises:
        InputDataError: non-finite features (naming the column), bad shapes or labels, a class with
            fewer than 2 cases.
        ConfigError: feature columns of families outside ``settings.families``.
    """
    images, X = check_inputs(images, X, feature_names, need_images=settings.usage_predictor)
    y = check_labels(y, X.shape[0])
    _check_families(feature_names, settings)
    mean, sd = standardisation(X)
    r = (X - mean) / sd
    train_index, validation_index = inner_validation_split(y, settings.inner_validation, seed)
    y_train = y[train_index]
    pos_weight = float((y_train == 0).sum() / (y_train == 1).sum())
    return TrainingData(images, y, mean, sd, r, train_index, validation_index, pos_weight)


# ----------------------------------------------------------------------------- step 2: network, loss, optimiser


def _build_network(
    settings: FingerprintSettings, n_views: int, n_features: int, seed: int, device: torch.device
) -> tuple[FingerprintNet, int | None]:
    """The seeded network on ``device``, and the number of backbone tensors loaded from ``init_weights``."""
    torch.manual_seed(seed)
    net = build_fingerprint_net(
        n_views=n_views,
        n_features=n_features,
        usage_predictor=settings.usage_predictor,
        widths=settings.resnet_widths,
        dropout=settings.dropout,
    )
    loaded = None
    if settings.init_weights is not None and net.usage_predictor is not None:
        loaded, _ = load_backbone_weights(net.usage_predictor.backbone, settings.init_weights)
    place(net, device)  # channels_last_3d on the CPU (radpersona.device.memory_format)
    return net, loaded


def _penalties(
    net: FingerprintNet, u: torch.Tensor, cfg: FingerprintSettings, lambda_u: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``lambda_u ||u||_1`` (sum over features, mean over the batch; 0 without a usage predictor) and
    ``lambda_beta ||beta||`` (Eq. 8)."""
    zero = net.beta.new_zeros(())
    penalty_u = lambda_u * u.abs().sum(dim=1).mean() if net.usage_predictor is not None else zero
    if cfg.beta_penalty == BetaPenalty.L2:
        penalty_beta = cfg.lambda_beta * torch.linalg.vector_norm(net.beta)
    else:
        penalty_beta = cfg.lambda_beta * net.beta.pow(2).sum()
    return penalty_u, penalty_beta


class _Objective:
    """Eq. 8 on the rows ``index``: weighted BCE plus the usage and coefficient penalties."""

    def __init__(
        self,
        net: FingerprintNet,
        data: TrainingData,
        settings: FingerprintSettings,
        device: torch.device,
        lambda_u: float,
    ) -> None:
        self.net, self.data, self.settings, self.device, self.lambda_u = net, data, settings, device, lambda_u
        self.r = torch.from_numpy(data.r.astype(np.float32)).to(device)
        self.y = torch.from_numpy(data.y.astype(np.float32)).to(device)
        self.pos_weight = torch.tensor(data.pos_weight, dtype=torch.float32, device=device)

    def _images(self, index: np.ndarray) -> torch.Tensor | None:
        if self.data.images is None or self.net.usage_predictor is None:
            return None
        return as_layout(torch.from_numpy(self.data.images[index]), self.device)

    def __call__(self, index: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss (with its graph) and its parts as floats: ``bce``, ``penalty_u``, ``penalty_beta``, ``mean_u``."""
        idx = torch.from_numpy(index).to(self.device)
        logit, u = self.net(self._images(index), self.r[idx])
        bce = F.binary_cross_entropy_with_logits(logit, self.y[idx], pos_weight=self.pos_weight)
        penalty_u, penalty_beta = _penalties(self.net, u, self.settings, self.lambda_u)
        loss = bce + penalty_u + penalty_beta
        parts = {
            "bce": float(bce.detach()),
            "penalty_u": float(penalty_u.detach()),
            "penalty_beta": float(penalty_beta.detach()),
            "mean_u": float(u.detach().mean()),
        }
        return loss, parts


def _make_optimizer(net: FingerprintNet, optimizer: Optimizer, learning_rate: float) -> torch.optim.Optimizer:
    """Adam (the paper) or a full-batch L-BFGS with a strong Wolfe line search."""
    if optimizer == "adam":
        return torch.optim.Adam(net.parameters(), lr=learning_rate)
    return torch.optim.LBFGS(
        net.parameters(),
        lr=1.0,
        max_iter=100,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        history_size=20,
        line_search_fn="strong_wolfe",
    )


# ----------------------------------------------------------------------------- step 3: one epoch


def _run_epoch(
    net: FingerprintNet,
    opt: torch.optim.Optimizer,
    objective: _Objective,
    train_index: np.ndarray,
    *,
    optimizer: Optimizer,
    batch_size: int,
    shuffle: np.random.Generator,
) -> dict[str, float]:
    """One pass over the inner-training rows; returns the losses averaged over them (weighted by batch size).

    Adam: one step per mini-batch of a fresh permutation (``shuffle``); L-BFGS: one run on all rows,
    whose losses are then evaluated once more without gradients.
    """
    net.train()
    sums = {"loss": 0.0, "bce": 0.0, "penalty_u": 0.0, "penalty_beta": 0.0, "mean_u": 0.0}
    if optimizer == "adam":
        parts_list = batches(train_index[shuffle.permutation(train_index.size)], batch_size)
    else:
        parts_list = [train_index]
    for index in parts_list:
        if optimizer == "adam":
            opt.zero_grad(set_to_none=True)
            loss, parts = objective(index)
            loss.backward()
            opt.step()
        else:

            def closure(index: np.ndarray = index) -> torch.Tensor:
                opt.zero_grad(set_to_none=True)
                loss_c, _ = objective(index)
                loss_c.backward()
                return loss_c

            opt.step(closure)  # type: ignore[arg-type]
            with torch.no_grad():
                loss, parts = objective(index)
        weight = index.size / train_index.size
        sums["loss"] += weight * float(loss.detach())
        for key, value in parts.items():
            sums[key] += weight * value
    return sums


# ----------------------------------------------------------------------------- step 4: the inner-validation scores


def _inner_validation(
    net: FingerprintNet, data: TrainingData, cfg: FingerprintSettings, device: torch.device, usage_threshold: float
) -> dict[str, float]:
    """Youden threshold, AUC, soft loss and mean features used of the hard-selection model
    (``z = 1[u > usage_threshold]``) on the inner validation split."""
    val_idx = data.validation_index
    u = usage(net, data.images, val_idx, cfg.batch_size, device)
    r = data.r[val_idx]
    yv = data.y[val_idx]
    beta = net.beta.detach().cpu().double().numpy()
    b = float(net.intercept.detach().cpu())
    z = (u > usage_threshold).astype(np.float64)
    prob = sigmoid((z * r) @ beta + b)
    logit_soft = (u * r) @ beta + b
    soft_bce = float(
        F.binary_cross_entropy_with_logits(
            torch.from_numpy(logit_soft),
            torch.from_numpy(yv.astype(np.float64)),
            pos_weight=torch.tensor(data.pos_weight, dtype=torch.float64),
        )
    )
    return {
        "threshold": youden_threshold(yv, prob),
        "inner_val_auc": float(roc_auc_score(yv, prob)),
        "inner_val_bce_soft": soft_bce,
        "inner_val_n_used": float(z.sum(axis=1).mean()),
    }


def selection_key(score: Mapping[str, float]) -> tuple[float, bool, float, float, float]:
    """Order of the ``(lambda_u, T)`` candidates (largest is chosen): inner-validation AUC, then a model that
    uses a feature before one that uses none, then fewer features used, then larger ``T``, then larger
    ``lambda_u``."""
    n_used = round(float(score["inner_val_n_used"]), 9)
    return (
        round(float(score["inner_val_auc"]), 12),
        n_used > 0,
        -n_used,
        float(score["usage_threshold"]),
        float(score["lambda_u"]),
    )


def _grid_scores(
    net: FingerprintNet, data: TrainingData, cfg: FingerprintSettings, device: torch.device, lambda_u: float
) -> list[dict[str, float]]:
    """The inner-validation scores of ``net`` at every candidate ``T``."""
    return [
        {"lambda_u": float(lambda_u), "usage_threshold": float(t), **_inner_validation(net, data, cfg, device, t)}
        for t in cfg.usage_threshold
    ]


# ----------------------------------------------------------------------------- training


@dataclass
class _Candidate:
    """One trained network of the ``lambda_u`` grid, its history and its scores at every ``T``."""

    net: FingerprintNet
    history: list[dict[str, Any]]
    scores: list[dict[str, float]]
    init_weights_loaded: int | None


def _train_candidate(
    data: TrainingData,
    cfg: FingerprintSettings,
    lambda_u: float,
    *,
    seed: int,
    device: torch.device,
    optimizer: Optimizer,
    label: str,
) -> _Candidate:
    """Train one network with ``lambda_u`` (seeded identically for every candidate) and score it."""
    net, loaded = _build_network(cfg, data.n_views, data.r.shape[1], seed, device)
    objective = _Objective(net, data, cfg, device, lambda_u)
    shuffle = np.random.default_rng(seed + 1)
    opt = _make_optimizer(net, optimizer, cfg.learning_rate)
    history: list[dict[str, Any]] = []
    threshold = float("nan")
    progress = Progress(label, total=cfg.epochs, unit="epoch")
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        sums = _run_epoch(
            net,
            opt,
            objective,
            data.train_index,
            optimizer=optimizer,
            batch_size=cfg.batch_size,
            shuffle=shuffle,
        )
        if not math.isfinite(sums["loss"]):
            raise FloatingPointError(f"{label}: training loss became {sums['loss']} at epoch {epoch + 1}")
        record: dict[str, Any] = {"epoch": epoch + 1, "lambda_u": float(lambda_u), **sums}
        if (epoch + 1) % cfg.threshold_every == 0 or epoch + 1 == cfg.epochs:
            best = max(_grid_scores(net, data, cfg, device, lambda_u), key=selection_key)
            record.update(best)
            threshold = record["threshold"]
        record["seconds"] = time.perf_counter() - start
        history.append(record)
        progress.update(1, loss=f"{sums['loss']:.4f}", threshold=f"{threshold:.4f}")
    net.eval()
    return _Candidate(net, history, _grid_scores(net, data, cfg, device, lambda_u), loaded)


def fit_fingerprint(
    images: np.ndarray | None,
    X: np.ndarray,
    y: np.ndarray,
    *,
    feature_names: Sequence[str],
    settings: FingerprintSettings,
    seed: int | None = None,
    device: str | None = None,
    log_label: str = "",
    optimizer: Optimizer = "adam",
) -> TrainedFingerprint:
    """Train usage predictor and logistic regression jointly on one training fold (Eq. 8), choosing
    ``lambda_u`` and ``T`` from their candidates on the inner validation split.

    Args:
        images: registered volumes, float32 ``(n, V, D, H, W)``; ``None`` is allowed when
            ``usage_predictor`` is false.
        X: raw candidate features, ``(n, N)``; NaN/inf are rejected naming the column.
        y: labels 0/1, ``(n,)``.
        feature_names: the ``N`` wide-table column names, in ``X`` column order.
        settings: the ``fingerprint`` settings (:class:`radpersona.settings.FingerprintSettings`).
        seed: overrides ``settings.seed``.
        device: overrides ``settings.device`` (``cpu``, ``cuda``, ``cuda:K``, ``auto``).
        log_label: prefix for progress lines (e.g. ``"acl fold 1"``).
        optimizer: ``adam`` (the paper; mini-batches of ``batch_size``) or ``lbfgs`` (full batch,
            one L-BFGS run of up to 100 iterations per epoch; for checking convergence, e.g.
            against scikit-learn, and for the classical ``u = 1`` model).

    Returns:
        The chosen candidate's model (final epoch) with the threshold estimated after the final epoch
        at the chosen ``T``, and the scores of every candidate (:attr:`TrainedFingerprint.selection`).
        Without a usage predictor one network is trained (``lambda_u`` has no effect) and ``T`` is
        still chosen (every ``T < 1`` selects every feature). With ``settings.permute_labels`` (a
        seed) the labels are permuted with it first (negative control; the model's settings record it).
    """
    cfg = settings
    seed = cfg.seed if seed is None else int(seed)
    dev = resolve_device(device if device is not None else cfg.device, DEVICE_KEY)
    if cfg.permute_labels is not None:  # negative control: the labels no longer belong to their cases
        y = np.random.default_rng(cfg.permute_labels).permutation(check_labels(y, np.asarray(y).shape[0]))
        logger.warning("%s: trained on labels permuted with seed %d (negative control)", log_label, cfg.permute_labels)
    data = prepare_training_data(images, X, y, feature_names=feature_names, settings=cfg, seed=seed)
    if optimizer not in ("adam", "lbfgs"):
        raise ConfigError(f"optimizer must be 'adam' or 'lbfgs', not {optimizer!r}")
    label = f"{log_label} fingerprint" if log_label else "fingerprint"
    lambdas = cfg.lambda_u if cfg.usage_predictor else cfg.lambda_u[:1]
    candidates = []
    for lambda_u in lambdas:
        name = f"{label} lambda_u={lambda_u:g}" if len(lambdas) > 1 else label
        candidates.append(_train_candidate(data, cfg, lambda_u, seed=seed, device=dev, optimizer=optimizer, label=name))
    selection = [score for candidate in candidates for score in candidate.scores]
    chosen = max(selection, key=selection_key)
    kept = next(c for c in candidates if c.scores[0]["lambda_u"] == chosen["lambda_u"])
    for score in selection:
        score["chosen"] = score is chosen
    logger.info(
        "%s: chose lambda_u=%g, T=%g (inner-validation AUC %.3f, %.1f features used) among %d candidates",
        label,
        chosen["lambda_u"],
        chosen["usage_threshold"],
        chosen["inner_val_auc"],
        chosen["inner_val_n_used"],
        len(selection),
    )
    return TrainedFingerprint(
        net=kept.net,
        feature_names=list(feature_names),
        mean=data.mean,
        sd=data.sd,
        threshold=float(chosen["threshold"]),
        usage_threshold=float(chosen["usage_threshold"]),
        lambda_u=float(chosen["lambda_u"]),
        selection=selection,
        history=kept.history,
        settings=cfg,
        seed=seed,
        n_views=data.n_views,
        train_index=data.train_index,
        inner_validation_index=data.validation_index,
        pos_weight=data.pos_weight,
        init_weights_loaded=kept.init_weights_loaded,
        device=dev,
    )


# ----------------------------------------------------------------------------- cross-validation


@dataclass
class FoldResult:
    """One cross-validation fold: indices into the full arrays, model and held-out predictions."""

    fold: int
    train_index: np.ndarray
    test_index: np.ndarray
    model: TrainedFingerprint
    prediction: dict[str, np.ndarray]


def cross_validate(
    images: np.ndarray | None,
    X: np.ndarray,
    y: np.ndarray,
    *,
    feature_names: Sequence[str],
    settings: FingerprintSettings,
    seed: int | None = None,
    device: str | None = None,
    log_label: str = "",
) -> list[FoldResult]:
    """``settings.folds``-fold stratified cross-validation; each fold's model sees only its training rows.

    Standardisation statistics, ``pos_weight`` and the threshold of fold ``k`` come from the rows
    outside fold ``k`` only; the held-out rows are predicted with them.
    """
    cfg = settings
    seed = cfg.seed if seed is None else int(seed)
    images, X = check_inputs(images, X, feature_names, need_images=cfg.usage_predictor)
    y = check_labels(y, X.shape[0])
    results = []
    for fold, test_idx in enumerate(stratified_folds(y, cfg.folds, seed)):
        train_idx = np.setdiff1d(np.arange(y.size), test_idx)
        model = fit_fingerprint(
            None if images is None else images[train_idx],
            X[train_idx],
            y[train_idx],
            feature_names=feature_names,
            settings=cfg,
            seed=seed,
            device=device,
            log_label=f"{log_label} fold {fold}".strip(),
        )
        prediction = model.predict(None if images is None else images[test_idx], X[test_idx])
        results.append(FoldResult(fold, train_idx, test_idx, model, prediction))
    return results
