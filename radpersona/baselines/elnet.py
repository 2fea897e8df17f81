"""ELNet (Tsai, Kiryati, Konen, Eshed & Mayer 2020, MIDL; arXiv:2005.02706), one view, from scratch.

Slices are the batch: a volume ``(S, H, W)`` passes as ``S`` one-channel images. The network is a
7x7 stride-2 convolution, then blocks of residual convolutions, each followed by a channel
expansion and a BlurPool downsampling; after the last block a spatial max gives one feature vector
per slice and a max over slices one per volume, and a linear layer the logit. Channels
``4K, 8K, 16K, 16K, 16K`` (the paper: K = 4).

* Multi-slice normalisation: every slice is normalised on its own (GroupNorm per slice: ``instance``
  = per channel, ``layer`` = over all channels), never with statistics across cases, as BatchNorm
  would; this keeps the network independent of the slice count.
* BlurPool (Zhang 2019): a fixed binomial low-pass filter before stride-2 subsampling
  (anti-aliased downsampling), applied per channel with reflect padding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from radpersona.baselines.slices import predict_slice_cnn, train_slice_cnn
from radpersona.device import resolve_device
from radpersona.errors import ConfigError, InputDataError
from radpersona.fingerprint import inner_validation_split, youden_threshold
from radpersona.settings import CNNSettings, ELNetSettings


def binomial_filter(size: int) -> torch.Tensor:
    """Normalised 2D binomial filter ``(size, size)``: the outer product of row ``size − 1`` of
    Pascal's triangle with itself, divided by its sum (size 3: [1, 2, 1]; size 5: [1, 4, 6, 4, 1])."""
    if not isinstance(size, int) or size < 1 or size > 9:
        raise ConfigError(f"baselines.elnet.blur_filter must be an integer in [1, 9], not {size!r}")
    row = torch.tensor([float(math.comb(size - 1, k)) for k in range(size)])
    kernel = torch.outer(row, row)
    return kernel / kernel.sum()


class BlurPool(nn.Module):
    """Anti-aliased downsampling: binomial blur (per channel, reflect padding) then stride ``stride``."""

    kernel: torch.Tensor

    def __init__(self, channels: int, *, stride: int = 2, filter_size: int = 5) -> None:
        super().__init__()
        if channels < 1 or stride < 1:
            raise ConfigError(f"BlurPool needs channels >= 1 and stride >= 1, got {channels} and {stride}")
        self.channels, self.stride, self.filter_size = channels, stride, filter_size
        self.register_buffer("kernel", binomial_filter(filter_size)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo = (self.filter_size - 1) // 2
        hi = self.filter_size - 1 - lo
        if min(x.shape[-2:]) > hi:
            x = F.pad(x, (lo, hi, lo, hi), mode="reflect")
        else:  # too small to reflect: replicate
            x = F.pad(x, (lo, hi, lo, hi), mode="replicate")
        return F.conv2d(x, self.kernel, stride=self.stride, groups=self.channels)


def multi_slice_norm(channels: int, kind: str) -> nn.GroupNorm:
    """Per-slice normalisation: ``instance`` (each channel of each slice) or ``layer`` (each slice)."""
    if kind == "instance":
        return nn.GroupNorm(channels, channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    raise ConfigError(f"baselines.elnet.norm must be 'instance' or 'layer', not {kind!r}")


class _Block(nn.Module):
    """``repeats`` x (conv, multi-slice norm, ReLU) added to the input (a residual block)."""

    def __init__(self, channels: int, kernel: int, repeats: int, norm: str) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(repeats):
            layers += [
                nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False),
                multi_slice_norm(channels, norm),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ELNet(nn.Module):
    """ELNet for one view.

    Args:
        K: width multiplier (channels ``4K, 8K, 16K, 16K, 16K``).
        norm: multi-slice normalisation, ``instance`` or ``layer``.
        blur_filter: BlurPool filter size.
        dropout: feature dropout before the linear layer.
    """

    def __init__(self, *, K: int = 4, norm: str = "instance", blur_filter: int = 5, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(K, int) or K < 1:
            raise ConfigError(f"baselines.elnet.K must be a positive integer, not {K!r}")
        c = [4 * K, 8 * K, 16 * K, 16 * K, 16 * K]
        self.stem = nn.Sequential(
            nn.Conv2d(1, c[0], 7, stride=2, padding=3, bias=False),
            multi_slice_norm(c[0], norm),
            nn.ReLU(),
            BlurPool(c[0], filter_size=blur_filter),
        )
        spec = [(5, 2), (3, 2), (3, 1), (3, 1)]  # (kernel, repeats) of blocks 2..5
        stages: list[nn.Module] = []
        for i, (kernel, repeats) in enumerate(spec):
            stages += [
                _Block(c[i], kernel, repeats, norm),
                nn.Conv2d(c[i], c[i + 1], kernel, padding=kernel // 2, bias=False),
                nn.ReLU(),
                BlurPool(c[i + 1], filter_size=blur_filter),
            ]
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(S, 1, H, W)`` slices of one volume -> a logit of shape ``(1,)``."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise InputDataError(f"ELNet expects slices as (S, 1, H, W), got {tuple(x.shape)}")
        feats = self.stages(self.stem(x)).amax(dim=(2, 3))  # (S, C): spatial max per slice
        return self.fc(self.dropout(feats.max(dim=0).values)).reshape(1)  # max over slices


def fit_elnet(
    train_volumes: Sequence[np.ndarray],
    y_train: np.ndarray,
    reported_volumes: Sequence[np.ndarray],
    *,
    settings: ELNetSettings,
    cnn: CNNSettings,
    inner_validation: float,
    seed: int,
    label: str,
) -> dict[str, Any]:
    """Train ELNet on the inner-training cases of one fold (one view), threshold on the inner
    validation cases by Youden's J, and score the reported cases.

    Returns:
        ``prob`` (reported cases), ``threshold``, ``init`` (always ``scratch``, as the paper) and sizes.
    """
    y = np.asarray(y_train).astype(int)
    device = resolve_device(cnn.device, "baselines.cnn.device")
    tr, val = inner_validation_split(y, inner_validation, seed)
    torch.manual_seed(seed)
    model = ELNet(
        K=settings.K,
        norm=settings.norm,
        blur_filter=settings.blur_filter,
        dropout=float(settings.dropout),
    )
    train_slice_cnn(
        model,
        [train_volumes[i] for i in tr],
        y[tr],
        epochs=cnn.epochs,
        learning_rate=float(cnn.learning_rate),
        weight_decay=float(cnn.weight_decay),
        seed=seed,
        device=device,
        label=f"{label} elnet",
    )
    threshold = youden_threshold(y[val], predict_slice_cnn(model, [train_volumes[i] for i in val], device))
    return {
        "prob": predict_slice_cnn(model, reported_volumes, device),
        "threshold": float(threshold),
        "init": "scratch",
        "n_inner_train": int(tr.size),
        "n_inner_validation": int(val.size),
    }
