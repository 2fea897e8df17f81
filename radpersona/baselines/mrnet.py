"""MRNet (Bien et al. 2018, PLoS Med 15:e1002699) trained from scratch or from a local weights file.

Per view and task one 2D CNN: every slice passes a 2D backbone, global average pooling gives one
feature vector per slice, a max over slices gives one per volume, and a linear layer one logit.
Bien et al. use ImageNet-pretrained AlexNet; ImageNet weights cannot be downloaded here, so the
backbone is a smaller AlexNet-like stack (five convolutions, three max-pools; width ``w``: channels
``w, 3w, 6w, 4w, 4w`` against AlexNet's ``64, 192, 384, 256, 256``) trained from scratch, unless
``baselines.mrnet.init_weights`` names a local state-dict file for the backbone. Which one was
used is recorded in the prediction table's metadata and the log.

The three views' probabilities are fused by a logistic regression fitted on out-of-fold view
predictions of the inner-training cases (``fusion_folds`` folds); the final view models are then
trained on all inner-training cases, and Youden's threshold is chosen on the fused probabilities
of the inner-validation cases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from radpersona.baselines.slices import predict_slice_cnn, train_slice_cnn
from radpersona.device import resolve_device
from radpersona.errors import ConfigError, InputDataError
from radpersona.fingerprint import inner_validation_split, stratified_folds, youden_threshold
from radpersona.settings import CNNSettings, MRNetSettings
from radpersona.vocabulary import VIEWS


class MRNetView(nn.Module):
    """One view's MRNet: AlexNet-like 2D backbone, GAP per slice, max over slices, linear logit.

    Args:
        width: channels of the first convolution (AlexNet: 64); must be >= 1.
    """

    def __init__(self, *, width: int = 16) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ConfigError(f"baselines.mrnet.width must be a positive integer, not {width!r}")
        w = width
        self.backbone = nn.Sequential(
            nn.Conv2d(1, w, kernel_size=7, stride=2, padding=3), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            nn.Conv2d(w, 3 * w, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            nn.Conv2d(3 * w, 6 * w, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(6 * w, 4 * w, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, 4 * w, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )  # fmt: skip
        self.classifier = nn.Linear(4 * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(S, 1, H, W)`` slices of one volume -> a logit of shape ``(1,)``."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise InputDataError(f"MRNet expects slices as (S, 1, H, W), got {tuple(x.shape)}")
        feats = self.backbone(x).mean(dim=(2, 3))  # (S, C): global average pooling per slice
        return self.classifier(feats.max(dim=0).values).reshape(1)  # max over slices


def load_backbone(model: MRNetView, path: str | Path) -> str:
    """Load a local backbone state dict (``torch.load(weights_only=True)``, strict); return its sha256.

    Raises:
        InputDataError: the file is missing or its tensors do not fit the backbone.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(
            f"baselines.mrnet.init_weights: no such local file {str(path)!r} (weights are never downloaded)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.backbone.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:
        raise InputDataError(
            f"baselines.mrnet.init_weights {str(path)!r} does not fit the MRNet backbone: {exc}"
        ) from None
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _new_model(settings: MRNetSettings, seed: int) -> tuple[MRNetView, str]:
    torch.manual_seed(seed)
    model = MRNetView(width=settings.width)
    init = settings.init_weights
    if init is None:
        return model, "scratch"
    return model, f"file {init} (sha256 {load_backbone(model, init)})"


def fit_mrnet(
    train_volumes: Mapping[str, Sequence[np.ndarray]],
    y_train: np.ndarray,
    reported_volumes: Mapping[str, Sequence[np.ndarray]],
    *,
    settings: MRNetSettings,
    cnn: CNNSettings,
    inner_validation: float,
    seed: int,
    label: str,
) -> dict[str, Any]:
    """Train MRNet on one training fold (three views + fusion) and score the reported cases.

    Args:
        train_volumes, reported_volumes: view -> standardised ``(S, H, W)`` volumes, one per case.
        y_train: labels of the training cases.
        settings: ``baselines.mrnet`` (``width``, ``init_weights``, ``fusion_folds``).
        cnn: ``baselines.cnn`` (``epochs``, ``learning_rate``, ``weight_decay``, ``device``).
        inner_validation: fraction of the fold held out to choose the threshold.
        seed: seeds the inner split, the fusion folds, each network's initialisation and case order.

    Returns:
        ``prob`` (fused, reported cases), ``prob_{view}``, ``threshold``, ``fusion_coef``
        (intercept then one weight per view), ``init`` (``scratch`` or the weights file) and sizes.
    """
    y = np.asarray(y_train).astype(int)
    device = resolve_device(cnn.device, "baselines.cnn.device")
    tr, val = inner_validation_split(y, inner_validation, seed)
    folds = stratified_folds(y[tr], settings.fusion_folds, seed)
    oof = np.zeros((tr.size, len(VIEWS)))
    init = "scratch"

    def train(view_index: int, cases: np.ndarray, tag: int, what: str) -> MRNetView:
        nonlocal init
        model_seed = seed * 1000 + view_index * 100 + tag
        model, init = _new_model(settings, model_seed)
        vols = [train_volumes[VIEWS[view_index]][i] for i in cases]
        train_slice_cnn(
            model,
            vols,
            y[cases],
            epochs=cnn.epochs,
            learning_rate=float(cnn.learning_rate),
            weight_decay=float(cnn.weight_decay),
            seed=model_seed,
            device=device,
            label=f"{label} {what}",
        )
        return model

    for v, view in enumerate(VIEWS):
        for f, held in enumerate(folds):
            fit_rows = np.setdiff1d(np.arange(tr.size), held)
            model = train(v, tr[fit_rows], f + 1, f"mrnet {view} fusion fold {f}")
            oof[held, v] = predict_slice_cnn(model, [train_volumes[view][i] for i in tr[held]], device)
    fusion = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000).fit(oof, y[tr])
    val_p = np.zeros((val.size, len(VIEWS)))
    rep_p = np.zeros((len(reported_volumes[VIEWS[0]]), len(VIEWS)))
    for v, view in enumerate(VIEWS):
        model = train(v, tr, 0, f"mrnet {view}")
        val_p[:, v] = predict_slice_cnn(model, [train_volumes[view][i] for i in val], device)
        rep_p[:, v] = predict_slice_cnn(model, reported_volumes[view], device)
    threshold = youden_threshold(y[val], fusion.predict_proba(val_p)[:, 1])
    out: dict[str, Any] = {
        "prob": fusion.predict_proba(rep_p)[:, 1],
        "threshold": float(threshold),
        "fusion_coef": [float(fusion.intercept_[0]), *map(float, fusion.coef_[0])],
        "init": init,
        "n_inner_train": int(tr.size),
        "n_inner_validation": int(val.size),
    }
    for v, view in enumerate(VIEWS):
        out[f"prob_{view}"] = rep_p[:, v]
    return out
