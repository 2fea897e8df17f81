"""Networks of the radiomic fingerprint (paper, Sec. 4.2-4.4 and 5.2.3-5.2.4).

* :class:`UsagePredictor` is ``f_alpha`` (Eq. 6): a MONAI 3D ResNet-18 backbone without its
  classification head, then dropout, one linear layer to ``N`` units, ``LayerNorm(N)`` and an
  element-wise sigmoid, so that ``u = f_alpha(I) in [0, 1]^N``.
* :class:`FingerprintNet` is the whole model: usage predictor (optional) and a logistic regression
  with one coefficient ``beta_n`` per candidate feature plus one intercept ``b`` (Eq. 7):
  ``logit = sum_n beta_n u_n r_n + b``. There are no interaction terms and no hidden layers in the
  classifier. Without a usage predictor ``u = 1`` (classical radiomics, Sec. 4.4).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.networks.nets import ResNet
from torch import nn

from radpersona.errors import ConfigError

logger = logging.getLogger("radpersona")

RESNET18_LAYERS: tuple[int, int, int, int] = (2, 2, 2, 2)
"""Residual blocks per stage of ResNet-18."""

_STATE_PREFIXES: tuple[str, ...] = ("module.", "usage_predictor.backbone.", "backbone.", "model.", "encoder.")


class UsagePredictor(nn.Module):
    """``f_alpha``: image volume -> feature usage probabilities ``u in [0, 1]^N`` (Eq. 6).

    Args:
        n_views: input channels, one per registered view (3; 1 for single-view sources).
        n_features: ``N``, the number of candidate radiomic features (output units).
        widths: the four stage widths of the ResNet-18 (``block_inplanes``), e.g. ``[64, 128, 256,
            512]`` (paper) or ``[16, 32, 64, 128]`` (CPU demo).
        dropout: dropout probability before the linear layer, in ``[0, 1)``.
    """

    def __init__(self, *, n_views: int, n_features: int, widths: Sequence[int], dropout: float) -> None:
        super().__init__()
        if n_views < 1:
            raise ConfigError(f"usage predictor: n_views must be >= 1, not {n_views}")
        if n_features < 1:
            raise ConfigError(f"usage predictor: n_features must be >= 1, not {n_features}")
        widths = [int(w) for w in widths]
        if len(widths) != 4 or min(widths) < 1:
            raise ConfigError(f"fingerprint.resnet_widths must be four positive integers, not {widths}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"fingerprint.dropout must be in [0, 1), not {dropout}")
        self.backbone = ResNet(
            block="basic",
            layers=list(RESNET18_LAYERS),
            block_inplanes=widths,
            spatial_dims=3,
            n_input_channels=n_views,
            feed_forward=False,  # MONAI 1.6: no fc head, forward returns the pooled features
        )
        self.dropout = nn.Dropout(p=dropout)
        self.linear = nn.Linear(widths[-1], n_features)
        self.norm = nn.LayerNorm(n_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map ``(B, V, D, H, W)`` volumes to usage probabilities ``(B, N)``."""
        features = self.backbone(images)
        return torch.sigmoid(self.norm(self.linear(self.dropout(features))))


class FingerprintNet(nn.Module):
    """Usage predictor (optional) and transparent logistic regression (Eq. 7).

    Args:
        n_features: ``N``.
        usage_predictor: ``f_alpha``, or ``None`` for ``u = 1`` (classical radiomics / NoFS ablation).

    The classifier parameters are ``beta`` (``N`` coefficients) and ``intercept`` (one scalar),
    initialised like :class:`torch.nn.Linear` (uniform in ``+-1/sqrt(N)``, bias 0) so that gradients
    reach ``alpha`` from the first step.
    """

    def __init__(self, *, n_features: int, usage_predictor: UsagePredictor | None) -> None:
        super().__init__()
        self.n_features = int(n_features)
        self.usage_predictor = usage_predictor
        bound = 1.0 / math.sqrt(self.n_features)
        self.beta = nn.Parameter(torch.empty(self.n_features).uniform_(-bound, bound))
        self.intercept = nn.Parameter(torch.zeros(()))

    def usage(self, images: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        """``u`` for a batch: ``f_alpha(images)``, or ones of shape ``(batch_size, N)`` without a predictor."""
        if self.usage_predictor is None:
            return torch.ones(batch_size, self.n_features, dtype=self.beta.dtype, device=self.beta.device)
        if images is None:
            raise ValueError("the usage predictor needs images, got None")
        return self.usage_predictor(images)

    def logit(self, weights: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """``sum_n beta_n w_n r_n + b`` with ``w = u`` (Eq. 7, soft) or ``w = z`` (Eq. 10, hard)."""
        return (weights * r) @ self.beta + self.intercept

    def forward(self, images: torch.Tensor | None, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the soft logit ``(B,)`` (Eq. 7) and the usage probabilities ``u`` ``(B, N)``."""
        u = self.usage(images, r.shape[0])
        return self.logit(u, r), u


def build_fingerprint_net(
    *, n_views: int, n_features: int, usage_predictor: bool, widths: Sequence[int], dropout: float
) -> FingerprintNet:
    """Build :class:`FingerprintNet`; no network is built when ``usage_predictor`` is false."""
    predictor = (
        UsagePredictor(n_views=n_views, n_features=n_features, widths=widths, dropout=dropout)
        if usage_predictor
        else None
    )
    return FingerprintNet(n_features=n_features, usage_predictor=predictor)


def _strip_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _STATE_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> tuple[int, int]:
    """Copy matching tensors from a local checkpoint into ``backbone`` (never downloads).

    The file is read with ``torch.load(..., weights_only=True)``; it may be a state dict or a dict
    with a ``state_dict`` key (MedicalNet style). Key prefixes ``module.``, ``backbone.``,
    ``usage_predictor.backbone.``, ``model.`` and ``encoder.`` are ignored. A tensor is loaded when
    its name and shape match a backbone tensor (e.g. ``conv1`` is skipped when the number of input
    channels differs).

    Returns:
        ``(n_loaded, n_backbone_tensors)``.

    Raises:
        ConfigError: the file is missing, is not a state dict, or no tensor matched.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"fingerprint.init_weights: file {str(path)!r} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(
            f"fingerprint.init_weights: file {str(path)!r} holds a {type(state).__name__}, not a state dict"
        )
    target = backbone.state_dict()
    matched: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        name = _strip_prefixes(str(key))
        if name in target and target[name].shape == value.shape:
            matched[name] = value.to(target[name].dtype)
    if not matched:
        raise ConfigError(
            f"fingerprint.init_weights: no tensor of {str(path)!r} matches the backbone in name and shape "
            f"({len(state)} tensors in the file, {len(target)} in the backbone)"
        )
    backbone.load_state_dict(matched, strict=False)
    logger.info("usage predictor: loaded %d of %d backbone tensors from %s", len(matched), len(target), path)
    return len(matched), len(target)
