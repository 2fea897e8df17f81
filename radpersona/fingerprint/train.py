"""Joint training of the usage predictor and the logistic regression (paper, Sec. 4.3, Eq. 8).

Objective per mini-batch ``B`` of the inner-training cases (Eq. 8)::

    mean_{i in B} w_i BCE(c_i, sigmoid(sum_n beta_n u_in r_in + b))     # w_i = n_neg/n_pos for positives
      + lambda_u * mean_{i in B, n} |u_in|                               # sparsity of usage (L1)
      + lambda_beta * ||beta||_2          (beta_penalty "l2", the paper's non-squared norm)
                    or ||beta||_2^2       (beta_penalty "squared")

optimised with Adam on ``alpha`` (usage predictor) and ``beta, b`` jointly. The paper writes the
usage penalty as ``lambda_u ||u||_1``; we average over the ``N`` features (``mean |u|``) so that
``lambda_u`` does not have to change with the size of the feature pool. Without a usage predictor
``u = 1`` is a constant and the usage penalty is left out (reported as 0).

Protocol (Sec. 5.2.4):

* the features are standardised with the mean and standard deviation (``ddof=0``; ``sd == 0`` is
  replaced by 1) of the training fold given to :func:`fit_fingerprint` and nothing else;
* a stratified, seeded fraction ``inner_validation`` of the training fold is held out from the
  gradient updates; every ``threshold_every`` epochs, and after the last epoch, the decision
  threshold is re-estimated on it by Youden's J of the hard-selection probabilities
  (``z = 1[u > T]``, Eq. 10) — never on reported cases;
* ``pos_weight = n_neg / n_pos`` is computed on the inner-training cases (those in the loss);
* the model kept is the one after the final epoch, with the threshold estimated after that epoch.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from radpersona.errors import ConfigError, InputDataError
from radpersona.fingerprint.model import FingerprintNet, build_fingerprint_net, load_backbone_weights
from radpersona.fingerprint.tables import Representation
from radpersona.fingerprint.threshold import youden_threshold
from radpersona.progress import Progress

from ..atomic import atomic_output

logger = logging.getLogger("radpersona")

FORMAT = "radpersona.fingerprint/1"
"""Format tag written into saved models."""


class BetaPenalty(StrEnum):
    """Norm of the population coefficients in Eq. 8."""

    L2 = "l2"  # lambda_beta * ||beta||_2 (the paper)
    SQUARED = "squared"  # lambda_beta * ||beta||_2^2 (ridge; matches scikit-learn's l2 penalty)


class ThresholdProtocol(StrEnum):
    """Where the decision threshold of reported predictions comes from."""

    INNER = "inner"  # Youden's J on the inner validation split of the training fold
    OPTIMISTIC = "optimistic"  # the caller re-thresholds on the reported split (labelled optimistic)


class DeviceChoice(StrEnum):
    """Compute device in the settings."""

    CPU = "cpu"
    CUDA = "cuda"
    AUTO = "auto"


@dataclass(frozen=True)
class FingerprintSettings:
    """The ``fingerprint`` section of ``config.yaml``, validated (see :meth:`from_mapping`)."""

    representation: Representation
    usage_predictor: bool
    usage_threshold: float
    lambda_u: float
    lambda_beta: float
    beta_penalty: BetaPenalty
    epochs: int
    batch_size: int
    learning_rate: float
    dropout: float
    resnet_widths: tuple[int, int, int, int]
    init_weights: str | None
    folds: int
    inner_validation: float
    threshold_every: int
    threshold_protocol: ThresholdProtocol
    seed: int
    device: DeviceChoice
    families: tuple[str, ...] | None = None
    """Radiomic families whose columns form ``r`` (location indices always kept); ``None`` = all
    families of the wide table. Optional in the mapping (absent = ``None``), for models saved before
    the key existed."""

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> FingerprintSettings:
        """Validate ``settings``: every key present, no unknown key, each value in range.

        Raises:
            ConfigError: naming the key ``fingerprint.<key>`` and the bad value.
        """
        if isinstance(settings, FingerprintSettings):
            return settings
        names = [f.name for f in cls.__dataclass_fields__.values()]
        optional = {"families"}
        missing = [k for k in names if k not in settings and k not in optional]
        unknown = [k for k in settings if k not in names]
        if missing or unknown:
            raise ConfigError(f"fingerprint settings: missing keys {missing}, unknown keys {unknown}")

        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"fingerprint.{key} {why}, not {settings[key]!r}")

        def enum(key: str, kind: type[StrEnum]) -> Any:
            try:
                return kind(settings[key])
            except ValueError:
                raise bad(key, f"must be one of {[m.value for m in kind]}") from None

        def number(key: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> float:
            value = settings[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad(key, "must be a finite number")
            if value < low or value > high or (low_open and value == low) or (high_open and value == high):
                raise bad(key, f"must be in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")
            return float(value)

        def integer(key: str, low: int) -> int:
            value = settings[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise bad(key, f"must be an integer >= {low}")
            return int(value)

        if not isinstance(settings["usage_predictor"], bool):
            raise bad("usage_predictor", "must be true or false")
        widths = settings["resnet_widths"]
        if (
            not isinstance(widths, (list, tuple))
            or len(widths) != 4
            or not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in widths)
        ):
            raise bad("resnet_widths", "must be four positive integers")
        init_weights = settings["init_weights"]
        if init_weights is not None and not isinstance(init_weights, (str, os.PathLike)):
            raise bad("init_weights", "must be null or a local file path")
        families = settings.get("families")
        if families is not None:
            from radpersona.fingerprint.tables import RADIOMIC_FAMILIES

            if (
                not isinstance(families, (list, tuple))
                or not families
                or not all(isinstance(f, str) and f in RADIOMIC_FAMILIES for f in families)
                or len(set(families)) != len(families)
            ):
                raise bad(
                    "families", f"must be null or a non-empty list of distinct families from {list(RADIOMIC_FAMILIES)}"
                )
        return cls(
            representation=enum("representation", Representation),
            usage_predictor=settings["usage_predictor"],
            usage_threshold=number("usage_threshold", 0.0, 1.0),
            lambda_u=number("lambda_u", 0.0, math.inf),
            lambda_beta=number("lambda_beta", 0.0, math.inf),
            beta_penalty=enum("beta_penalty", BetaPenalty),
            epochs=integer("epochs", 1),
            batch_size=integer("batch_size", 2),
            learning_rate=number("learning_rate", 0.0, math.inf, low_open=True),
            dropout=number("dropout", 0.0, 1.0, high_open=True),
            resnet_widths=tuple(int(w) for w in widths),  # type: ignore[arg-type]
            init_weights=None if init_weights is None else str(init_weights),
            folds=integer("folds", 2),
            inner_validation=number("inner_validation", 0.0, 1.0, low_open=True, high_open=True),
            threshold_every=integer("threshold_every", 1),
            threshold_protocol=enum("threshold_protocol", ThresholdProtocol),
            seed=integer("seed", 0),
            device=enum("device", DeviceChoice),
            families=None if families is None else tuple(str(f) for f in families),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain python types only (YAML/``torch.load(weights_only=True)`` friendly)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, StrEnum):
                out[key] = value.value
        out["resnet_widths"] = list(self.resnet_widths)
        out["families"] = None if self.families is None else list(self.families)
        return out


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (or ``cuda:K``) or ``auto`` -> a :class:`torch.device`.

    Raises:
        ConfigError: CUDA requested but not available.
    """
    if name == DeviceChoice.AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == DeviceChoice.CPU:
        return torch.device("cpu")
    if name == DeviceChoice.CUDA or str(name).startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"fingerprint.device is {name!r} but CUDA is not available on this machine")
        return torch.device(name)
    raise ConfigError(f"fingerprint.device must be cpu, cuda or auto, not {name!r}")


# ----------------------------------------------------------------------------- data checks


def _check_inputs(
    images: np.ndarray | None, X: np.ndarray, feature_names: Sequence[str] | None, *, need_images: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    X = np.asarray(X)
    if X.ndim != 2:
        raise InputDataError(f"feature matrix must be 2-D (cases, features), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise InputDataError(f"feature matrix must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float64, copy=False)
    if feature_names is not None and len(feature_names) != X.shape[1]:
        raise InputDataError(f"{len(feature_names)} feature names for {X.shape[1]} feature columns")
    bad = ~np.isfinite(X)
    if bad.any():
        column = int(np.flatnonzero(bad.any(axis=0))[0])
        name = feature_names[column] if feature_names is not None else f"#{column}"
        raise InputDataError(
            f"feature column {name!r} has {int(bad[:, column].sum())} missing or non-finite values "
            f"({int(bad.any(axis=0).sum())} such columns in all); fix or drop them before training",
            value=float(X[bad[:, column], column][0]),
        )
    if images is None:
        if need_images:
            raise InputDataError("the usage predictor needs images, got None")
        return None, X
    images = np.asarray(images)
    if images.ndim != 5:
        raise InputDataError(f"images must be (cases, views, D, H, W), got shape {images.shape}")
    if images.dtype != np.float32:
        raise InputDataError(f"images must be float32, got {images.dtype}")
    if images.shape[0] != X.shape[0]:
        raise InputDataError(f"{images.shape[0]} image volumes for {X.shape[0]} feature rows")
    return images, X


def _check_labels(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise InputDataError(f"labels must have shape ({n},), got {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise InputDataError(f"labels must be 0/1, got values {sorted(np.unique(y).tolist())}")
    return y.astype(np.int64)


def standardisation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and standard deviation (``ddof=0``) with ``sd == 0`` replaced by 1."""
    mean = X.mean(axis=0)
    sd = X.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return mean, sd


# ----------------------------------------------------------------------------- splits


def inner_validation_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split of a training fold into inner-training and inner-validation indices.

    Each class contributes ``max(1, round(fraction * n_class))`` cases to the validation part and
    keeps at least one for training.

    Raises:
        InputDataError: a class has fewer than 2 cases.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    val_parts = []
    for label in (0, 1):
        members = np.flatnonzero(y == label)
        if members.size < 2:
            raise InputDataError(
                f"inner validation split needs >= 2 cases of class {label}, the training fold has {members.size}"
            )
        n_val = min(max(1, int(round(fraction * members.size))), members.size - 1)
        val_parts.append(rng.permutation(members)[:n_val])
    val = np.sort(np.concatenate(val_parts))
    train = np.setdiff1d(np.arange(y.size), val)
    return train, val


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out indices of ``folds`` stratified, shuffled, seeded cross-validation folds."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    y = np.asarray(y)
    return [np.sort(test) for _, test in splitter.split(np.zeros(y.size), y)]


def _batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive batches; a trailing batch of one case is merged into the previous one (BatchNorm)."""
    parts = [order[i : i + batch_size] for i in range(0, order.size, batch_size)]
    if len(parts) > 1 and parts[-1].size == 1:
        parts[-2] = np.concatenate([parts[-2], parts[-1]])
        parts.pop()
    return parts


# ----------------------------------------------------------------------------- trained model


@dataclass
class TrainedFingerprint:
    """A trained fingerprint model: network, standardisation, threshold and provenance.

    Attributes:
        net: the :class:`FingerprintNet` (usage predictor and logistic regression).
        feature_names: wide-table column of each of the ``N`` features, in ``r`` order.
        mean, sd: standardisation statistics of the training fold (``r = (x - mean) / sd``).
        threshold: decision threshold on ``prob`` (Youden's J on the inner validation split).
        usage_threshold: ``T`` of the hard selection ``z = 1[u > T]``.
        history: one dict per epoch (losses, seconds, and the inner-validation threshold/AUC on the
            epochs it was estimated).
        settings: the validated settings.
        seed: the seed used (network initialisation, batches, inner split).
        n_views: input channels of the usage predictor (0 without one).
        train_index, inner_validation_index: row indices (into the arrays given to
            :func:`fit_fingerprint`) of the inner-training and inner-validation cases.
        pos_weight: ``n_neg / n_pos`` of the inner-training cases.
        threshold_from: where ``threshold`` was chosen (``inner_validation``).
        init_weights_loaded: backbone tensors loaded from ``init_weights`` (``None`` if unused).
    """

    net: FingerprintNet
    feature_names: list[str]
    mean: np.ndarray
    sd: np.ndarray
    threshold: float
    usage_threshold: float
    history: list[dict[str, Any]]
    settings: FingerprintSettings
    seed: int
    n_views: int
    train_index: np.ndarray
    inner_validation_index: np.ndarray
    pos_weight: float
    threshold_from: str = "inner_validation"
    init_weights_loaded: int | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def beta(self) -> np.ndarray:
        """Population coefficients ``beta`` (``N``,), float64."""
        return self.net.beta.detach().cpu().double().numpy().copy()

    @property
    def intercept(self) -> float:
        """Intercept ``b`` of the logistic regression."""
        return float(self.net.intercept.detach().cpu().double())

    def standardise(self, X: np.ndarray) -> np.ndarray:
        """``(X - mean) / sd`` with the training-fold statistics."""
        return (X - self.mean) / self.sd

    def predict(
        self, images: np.ndarray | None, X: np.ndarray, *, feature_names: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Predict cases with hard feature selection (Eq. 10) and, for reference, soft usage (Eq. 7).

        Args:
            images: float32 ``(n, V, D, H, W)``; may be ``None`` without a usage predictor.
            X: raw (unstandardised) features ``(n, N)`` in the model's column order.
            feature_names: if given, must equal the model's ``feature_names`` (order checked).

        Returns:
            ``prob`` (``sigmoid(logit)``), ``logit`` (``sum beta z r + b``), ``prob_soft`` and
            ``logit_soft`` (with ``u`` in place of ``z``), ``u``, ``z`` (0/1 float), ``r``
            (standardised features), all ``(n, N)`` or ``(n,)`` float64, and ``n_used`` (``sum z``,
            int64).
        """
        if feature_names is not None and list(feature_names) != self.feature_names:
            raise InputDataError("feature columns differ from those the fingerprint model was trained on")
        images, X = _check_inputs(images, X, self.feature_names, need_images=self.net.usage_predictor is not None)
        if images is not None and self.net.usage_predictor is not None and images.shape[1] != self.n_views:
            raise InputDataError(f"model expects {self.n_views} views, images have {images.shape[1]}")
        r = self.standardise(X)
        u = _usage(self.net, images, np.arange(X.shape[0]), self.settings.batch_size, self.device)
        z = (u > self.usage_threshold).astype(np.float64)
        beta, b = self.beta, self.intercept
        logit = (z * r) @ beta + b
        logit_soft = (u * r) @ beta + b
        return {
            "prob": _sigmoid(logit),
            "logit": logit,
            "prob_soft": _sigmoid(logit_soft),
            "logit_soft": logit_soft,
            "u": u,
            "z": z,
            "r": r,
            "n_used": z.sum(axis=1).astype(np.int64),
        }

    def save(self, path: Path) -> None:
        """Write the model atomically; the file holds only tensors and plain python types."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        import monai

        from radpersona import __version__

        payload = {
            "format": FORMAT,
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "feature_names": list(self.feature_names),
            "mean": torch.from_numpy(np.asarray(self.mean, dtype=np.float64)),
            "sd": torch.from_numpy(np.asarray(self.sd, dtype=np.float64)),
            "threshold": float(self.threshold),
            "usage_threshold": float(self.usage_threshold),
            "history": [_plain(h) for h in self.history],
            "settings": self.settings.as_dict(),
            "seed": int(self.seed),
            "n_views": int(self.n_views),
            "train_index": torch.from_numpy(np.asarray(self.train_index, dtype=np.int64)),
            "inner_validation_index": torch.from_numpy(np.asarray(self.inner_validation_index, dtype=np.int64)),
            "pos_weight": float(self.pos_weight),
            "threshold_from": str(self.threshold_from),
            "init_weights_loaded": self.init_weights_loaded,
            "versions": {
                "radpersona": str(__version__),
                "torch": str(torch.__version__),
                "monai": str(monai.__version__),
            },
        }
        with atomic_output(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> TrainedFingerprint:
        """Read a model written by :meth:`save` (``torch.load(..., weights_only=True)``)."""
        path = Path(path)
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise InputDataError(f"not a fingerprint model (format {FORMAT!r} expected)", path=path)
        settings = FingerprintSettings.from_mapping(payload["settings"])
        dev = resolve_device(device)
        net = build_fingerprint_net(
            n_views=payload["n_views"],
            n_features=len(payload["feature_names"]),
            usage_predictor=settings.usage_predictor,
            widths=settings.resnet_widths,
            dropout=settings.dropout,
        )
        net.load_state_dict(payload["state_dict"], strict=True)
        net.to(dev).eval()
        return cls(
            net=net,
            feature_names=list(payload["feature_names"]),
            mean=payload["mean"].numpy(),
            sd=payload["sd"].numpy(),
            threshold=float(payload["threshold"]),
            usage_threshold=float(payload["usage_threshold"]),
            history=list(payload["history"]),
            settings=settings,
            seed=int(payload["seed"]),
            n_views=int(payload["n_views"]),
            train_index=payload["train_index"].numpy(),
            inner_validation_index=payload["inner_validation_index"].numpy(),
            pos_weight=float(payload["pos_weight"]),
            threshold_from=str(payload["threshold_from"]),
            init_weights_loaded=payload["init_weights_loaded"],
            device=dev,
        )


def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays inside dicts and lists to python types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@torch.no_grad()
def _usage(
    net: FingerprintNet,
    images: np.ndarray | None,
    index: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """``u`` (float64) for the rows ``index`` in eval mode; ones without a usage predictor."""
    if net.usage_predictor is None:
        return np.ones((index.size, net.n_features), dtype=np.float64)
    assert images is not None
    was_training = net.training
    net.eval()
    out = []
    for start in range(0, index.size, batch_size):
        batch = torch.from_numpy(images[index[start : start + batch_size]]).to(device)
        out.append(net.usage_predictor(batch).double().cpu().numpy())
    net.train(was_training)
    return np.concatenate(out, axis=0) if out else np.zeros((0, net.n_features))


# ----------------------------------------------------------------------------- training


def _penalties(net: FingerprintNet, u: torch.Tensor, cfg: FingerprintSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """``lambda_u mean|u|`` (0 without a usage predictor) and ``lambda_beta ||beta||`` (Eq. 8)."""
    zero = net.beta.new_zeros(())
    penalty_u = cfg.lambda_u * u.abs().mean() if net.usage_predictor is not None else zero
    if cfg.beta_penalty == BetaPenalty.L2:
        penalty_beta = cfg.lambda_beta * torch.linalg.vector_norm(net.beta)
    else:
        penalty_beta = cfg.lambda_beta * net.beta.pow(2).sum()
    return penalty_u, penalty_beta


def fit_fingerprint(
    images: np.ndarray | None,
    X: np.ndarray,
    y: np.ndarray,
    *,
    feature_names: Sequence[str],
    settings: Mapping[str, Any] | FingerprintSettings,
    seed: int | None = None,
    device: str | None = None,
    log_label: str = "",
    optimizer: Literal["adam", "lbfgs"] = "adam",
) -> TrainedFingerprint:
    """Train usage predictor and logistic regression jointly on one training fold (Eq. 8).

    Args:
        images: registered volumes, float32 ``(n, V, D, H, W)``; ``None`` is allowed when
            ``usage_predictor`` is false.
        X: raw candidate features, ``(n, N)``; NaN/inf are rejected naming the column.
        y: labels 0/1, ``(n,)``.
        feature_names: the ``N`` wide-table column names, in ``X`` column order.
        settings: the ``fingerprint`` config section (validated by :class:`FingerprintSettings`).
        seed: overrides ``settings.seed``.
        device: overrides ``settings.device`` (``cpu``, ``cuda``, ``cuda:K``, ``auto``).
        log_label: prefix for progress lines (e.g. ``"acl fold 1"``).
        optimizer: ``adam`` (the paper; mini-batches of ``batch_size``) or ``lbfgs`` (full batch,
            one L-BFGS run of up to 100 iterations per epoch; for checking convergence, e.g.
            against scikit-learn, and for the classical ``u = 1`` model).

    Returns:
        The trained model (final epoch) with the threshold estimated after the final epoch.
    """
    cfg = FingerprintSettings.from_mapping(settings)
    seed = cfg.seed if seed is None else int(seed)
    dev = resolve_device(device if device is not None else cfg.device)
    images, X = _check_inputs(images, X, feature_names, need_images=cfg.usage_predictor)
    y = _check_labels(y, X.shape[0])
    if cfg.families is not None:
        from radpersona.fingerprint.tables import LOCATION_FAMILY, parse_feature_name

        allowed = set(cfg.families) | {LOCATION_FAMILY}
        stray = sorted({parse_feature_name(c).family for c in feature_names} - allowed)
        if stray:
            raise ConfigError(
                f"fingerprint.families is {list(cfg.families)} but the feature columns include families {stray}: "
                "select the columns with select_columns(..., families=settings['families'])"
            )
    if optimizer not in ("adam", "lbfgs"):
        raise ConfigError(f"optimizer must be 'adam' or 'lbfgs', not {optimizer!r}")
    n_cases, n_features = X.shape
    label = f"{log_label} fingerprint" if log_label else "fingerprint"

    mean, sd = standardisation(X)
    r_all = (X - mean) / sd
    train_idx, val_idx = inner_validation_split(y, cfg.inner_validation, seed)
    y_train = y[train_idx]
    pos_weight = float((y_train == 0).sum() / (y_train == 1).sum())

    torch.manual_seed(seed)
    n_views = 0 if images is None else int(images.shape[1])
    net = build_fingerprint_net(
        n_views=n_views,
        n_features=n_features,
        usage_predictor=cfg.usage_predictor,
        widths=cfg.resnet_widths,
        dropout=cfg.dropout,
    )
    loaded = None
    if cfg.init_weights is not None and net.usage_predictor is not None:
        loaded, _ = load_backbone_weights(net.usage_predictor.backbone, cfg.init_weights)
    net.to(dev)

    r_t = torch.from_numpy(r_all.astype(np.float32)).to(dev)
    y_t = torch.from_numpy(y.astype(np.float32)).to(dev)
    pw_t = torch.tensor(pos_weight, dtype=torch.float32, device=dev)
    shuffle = np.random.default_rng(seed + 1)

    def batch_images(index: np.ndarray) -> torch.Tensor | None:
        if images is None or net.usage_predictor is None:
            return None
        return torch.from_numpy(images[index]).to(dev, non_blocking=True)

    def objective(index: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
        idx_t = torch.from_numpy(index).to(dev)
        logit, u = net(batch_images(index), r_t[idx_t])
        bce = F.binary_cross_entropy_with_logits(logit, y_t[idx_t], pos_weight=pw_t)
        penalty_u, penalty_beta = _penalties(net, u, cfg)
        loss = bce + penalty_u + penalty_beta
        parts = {
            "bce": float(bce.detach()),
            "penalty_u": float(penalty_u.detach()),
            "penalty_beta": float(penalty_beta.detach()),
            "mean_u": float(u.detach().mean()),
        }
        return loss, parts

    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    else:
        opt = torch.optim.LBFGS(
            net.parameters(),
            lr=1.0,
            max_iter=100,
            tolerance_grad=1e-12,
            tolerance_change=1e-15,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

    history: list[dict[str, Any]] = []
    threshold = float("nan")
    progress = Progress(label, total=cfg.epochs, unit="epoch")
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        net.train()
        sums = {"loss": 0.0, "bce": 0.0, "penalty_u": 0.0, "penalty_beta": 0.0, "mean_u": 0.0}
        if optimizer == "adam":
            order = train_idx[shuffle.permutation(train_idx.size)]
            parts_list = _batches(order, cfg.batch_size)
        else:
            parts_list = [train_idx]
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
            weight = index.size / train_idx.size
            sums["loss"] += weight * float(loss.detach())
            for key, value in parts.items():
                sums[key] += weight * value
        if not math.isfinite(sums["loss"]):
            raise FloatingPointError(f"{label}: training loss became {sums['loss']} at epoch {epoch + 1}")
        record: dict[str, Any] = {"epoch": epoch + 1, **sums}
        if (epoch + 1) % cfg.threshold_every == 0 or epoch + 1 == cfg.epochs:
            record.update(_inner_validation(net, images, r_all, y, val_idx, cfg, pos_weight, dev))
            threshold = record["threshold"]
        record["seconds"] = time.perf_counter() - start
        history.append(record)
        progress.update(1, loss=f"{sums['loss']:.4f}", threshold=f"{threshold:.4f}")

    net.eval()
    return TrainedFingerprint(
        net=net,
        feature_names=list(feature_names),
        mean=mean,
        sd=sd,
        threshold=float(threshold),
        usage_threshold=cfg.usage_threshold,
        history=history,
        settings=cfg,
        seed=seed,
        n_views=n_views,
        train_index=train_idx,
        inner_validation_index=val_idx,
        pos_weight=pos_weight,
        init_weights_loaded=loaded,
        device=dev,
    )


def _inner_validation(
    net: FingerprintNet,
    images: np.ndarray | None,
    r_all: np.ndarray,
    y: np.ndarray,
    val_idx: np.ndarray,
    cfg: FingerprintSettings,
    pos_weight: float,
    device: torch.device,
) -> dict[str, float]:
    """Youden threshold, AUC and losses of the hard-selection model on the inner validation split."""
    u = _usage(net, images, val_idx, cfg.batch_size, device)
    r = r_all[val_idx]
    yv = y[val_idx]
    beta = net.beta.detach().cpu().double().numpy()
    b = float(net.intercept.detach().cpu())
    z = (u > cfg.usage_threshold).astype(np.float64)
    prob = _sigmoid((z * r) @ beta + b)
    logit_soft = (u * r) @ beta + b
    soft_bce = float(
        F.binary_cross_entropy_with_logits(
            torch.from_numpy(logit_soft),
            torch.from_numpy(yv.astype(np.float64)),
            pos_weight=torch.tensor(pos_weight, dtype=torch.float64),
        )
    )
    return {
        "threshold": youden_threshold(yv, prob),
        "inner_val_auc": float(roc_auc_score(yv, prob)),
        "inner_val_bce_soft": soft_bce,
        "inner_val_n_used": float(z.sum(axis=1).mean()),
    }


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
    settings: Mapping[str, Any] | FingerprintSettings,
    seed: int | None = None,
    device: str | None = None,
    log_label: str = "",
) -> list[FoldResult]:
    """``settings.folds``-fold stratified cross-validation; each fold's model sees only its training rows.

    Standardisation statistics, ``pos_weight`` and the threshold of fold ``k`` come from the rows
    outside fold ``k`` only; the held-out rows are predicted with them.
    """
    cfg = FingerprintSettings.from_mapping(settings)
    seed = cfg.seed if seed is None else int(seed)
    images, X = _check_inputs(images, X, feature_names, need_images=cfg.usage_predictor)
    y = _check_labels(y, X.shape[0])
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
