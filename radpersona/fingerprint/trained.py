"""A trained fingerprint model: prediction with hard feature selection, and its weights-only file.

:class:`TrainedFingerprint` holds the network, the training fold's standardisation, the decision
threshold and the provenance of one training run (:func:`radpersona.fingerprint.fit_fingerprint`
makes it). Prediction (paper, Eq. 7 and 10)::

    r = (x - mean) / sd,  u = f_alpha(I),  z = 1[u > T]
    prob = sigmoid(sum_n beta_n z_n r_n + b)          (hard selection, reported)
    prob_soft = sigmoid(sum_n beta_n u_n r_n + b)     (soft usage, for reference)

The file holds only tensors and plain Python types (read with ``torch.load(..., weights_only=True)``);
its ``settings`` are the plain ``fingerprint`` section (:meth:`FingerprintSettings.to_config`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radpersona.atomic import atomic_output
from radpersona.device import as_layout, place, resolve_device
from radpersona.errors import InputDataError
from radpersona.fingerprint.inputs import check_inputs
from radpersona.fingerprint.model import FingerprintNet, build_fingerprint_net
from radpersona.settings import FingerprintSettings

FORMAT = "radpersona.fingerprint/2"
"""Format tag written into saved models (2: ``||u||_1`` summed over features, ``lambda_u`` and ``T`` chosen
on the inner validation split and stored with their grid's scores)."""

DEVICE_KEY = "fingerprint.device"
"""The config key a device error names."""


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, ``1 / (1 + exp(-x))`` computed as ``(1 + tanh(x / 2)) / 2`` (no overflow)."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@torch.no_grad()
def usage(
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
        batch = as_layout(torch.from_numpy(images[index[start : start + batch_size]]), device)
        out.append(net.usage_predictor(batch).double().cpu().numpy())
    net.train(was_training)
    return np.concatenate(out, axis=0) if out else np.zeros((0, net.n_features))


def stored_settings(stored: Mapping[str, Any]) -> FingerprintSettings:
    """The settings of a saved model; models saved before ``families`` existed read it as ``None``."""
    return FingerprintSettings.from_config({"families": None, **stored})


@dataclass
class TrainedFingerprint:
    """A trained fingerprint model: network, standardisation, threshold and provenance.

    Attributes:
        net: the :class:`FingerprintNet` (usage predictor and logistic regression).
        feature_names: wide-table column of each of the ``N`` features, in ``r`` order.
        mean, sd: standardisation statistics of the training fold (``r = (x - mean) / sd``).
        threshold: decision threshold on ``prob`` (Youden's J on the inner validation split).
        usage_threshold: ``T`` of the hard selection ``z = 1[u > T]`` (chosen on the inner validation split).
        lambda_u: weight of ``||u||_1`` the network was trained with (chosen on the inner validation split).
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
        selection: the inner-validation scores of every ``(lambda_u, T)`` candidate (keys ``lambda_u``,
            ``usage_threshold``, ``threshold``, ``inner_val_auc``, ``inner_val_bce_soft``,
            ``inner_val_n_used``, ``chosen``).
    """

    net: FingerprintNet
    feature_names: list[str]
    mean: np.ndarray
    sd: np.ndarray
    threshold: float
    usage_threshold: float
    lambda_u: float
    history: list[dict[str, Any]]
    settings: FingerprintSettings
    seed: int
    n_views: int
    train_index: np.ndarray
    inner_validation_index: np.ndarray
    pos_weight: float
    threshold_from: str = "inner_validation"
    init_weights_loaded: int | None = None
    selection: list[dict[str, Any]] = field(default_factory=list)
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
        images, X = check_inputs(images, X, self.feature_names, need_images=self.net.usage_predictor is not None)
        if images is not None and self.net.usage_predictor is not None and images.shape[1] != self.n_views:
            raise InputDataError(f"model expects {self.n_views} views, images have {images.shape[1]}")
        r = self.standardise(X)
        u = usage(self.net, images, np.arange(X.shape[0]), self.settings.batch_size, self.device)
        z = (u > self.usage_threshold).astype(np.float64)
        beta, b = self.beta, self.intercept
        logit = (z * r) @ beta + b
        logit_soft = (u * r) @ beta + b
        return {
            "prob": sigmoid(logit),
            "logit": logit,
            "prob_soft": sigmoid(logit_soft),
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
            "lambda_u": float(self.lambda_u),
            "selection": [_plain(score) for score in self.selection],
            "history": [_plain(h) for h in self.history],
            "settings": self.settings.to_config(),
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
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise InputDataError(
                f"not a fingerprint model of this version (format {FORMAT!r} expected, found {found!r}; retrain it)",
                path=path,
            )
        settings = stored_settings(payload["settings"])
        dev = resolve_device(device, DEVICE_KEY)
        net = build_fingerprint_net(
            n_views=payload["n_views"],
            n_features=len(payload["feature_names"]),
            usage_predictor=settings.usage_predictor,
            widths=settings.resnet_widths,
            dropout=settings.dropout,
        )
        net.load_state_dict(payload["state_dict"], strict=True)
        place(net, dev).eval()
        return cls(
            net=net,
            feature_names=list(payload["feature_names"]),
            mean=payload["mean"].numpy(),
            sd=payload["sd"].numpy(),
            threshold=float(payload["threshold"]),
            usage_threshold=float(payload["usage_threshold"]),
            lambda_u=float(payload["lambda_u"]),
            selection=list(payload["selection"]),
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
