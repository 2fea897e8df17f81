"""Training and scoring of slice-wise 2D CNNs (MRNet, ELNet) with variable slice counts.

A volume ``(S, H, W)`` enters as a batch of ``S`` one-channel slices; the network max-pools its
slice features across the ``S`` slices into one logit per volume. Cases are fed one at a time
(batch of one volume), so volumes of any slice count (and any in-plane size) are used whole:
nothing is cropped or padded. Each volume is z-scored on its own before it enters the network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from radpersona.errors import InputDataError

logger = logging.getLogger("radpersona")


def standardise_volume(volume: np.ndarray, *, case: str = "?", view: str = "?") -> np.ndarray:
    """``(v - mean) / sd`` of one volume as float32 ``(S, H, W)``; a constant volume becomes zeros.

    Raises:
        InputDataError: not 3-D or not finite (naming case and view).
    """
    v = np.asarray(volume, dtype=np.float32)
    if v.ndim != 3:
        raise InputDataError(f"case {case} view {view}: a volume must be (slices, rows, cols), got shape {v.shape}")
    if not np.isfinite(v).all():
        raise InputDataError(f"case {case} view {view}: volume has {int((~np.isfinite(v)).sum())} non-finite voxels")
    sd = float(v.std())
    return ((v - float(v.mean())) / sd).astype(np.float32) if sd > 0 else np.zeros_like(v)


def _as_input(volume: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(volume)).unsqueeze(1).to(device)  # (S, 1, H, W)


def train_slice_cnn(
    model: nn.Module,
    volumes: Sequence[np.ndarray],
    y: np.ndarray,
    *,
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    seed: int,
    device: torch.device,
    label: str = "",
) -> list[float]:
    """Train ``model`` (input ``(S, 1, H, W)``, output one logit) with class-weighted BCE and Adam.

    Args:
        volumes: standardised ``(S, H, W)`` float32 volumes (slice counts may differ).
        y: 0/1 labels; ``pos_weight = n_neg / n_pos`` as for the fingerprint.
        seed: the case order of every epoch is drawn from ``numpy.random.default_rng(seed)``.

    Returns:
        Mean training loss per epoch.
    """
    y = np.asarray(y).astype(int)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        raise InputDataError(f"{label}: training needs both classes, got {n_pos} positives among {y.size} cases")
    pos_weight = torch.tensor([(y.size - n_pos) / n_pos], dtype=torch.float32, device=device)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    losses = []
    start = time.perf_counter()
    for _epoch in range(epochs):
        total = 0.0
        for i in rng.permutation(y.size):
            logit = model(_as_input(volumes[i], device)).reshape(1)
            loss = F.binary_cross_entropy_with_logits(
                logit, torch.tensor([float(y[i])], device=device), pos_weight=pos_weight
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        losses.append(total / y.size)
    logger.info(
        "%s: %d epochs on %d cases, final loss %.4f, %.1f s",
        label,
        epochs,
        y.size,
        losses[-1] if losses else float("nan"),
        time.perf_counter() - start,
    )
    return losses


@torch.no_grad()
def predict_slice_cnn(model: nn.Module, volumes: Sequence[np.ndarray], device: torch.device) -> np.ndarray:
    """Probabilities ``sigmoid(logit)`` (float64) of each volume, in eval mode."""
    model.to(device).eval()
    out = [float(torch.sigmoid(model(_as_input(v, device)).reshape(()))) for v in volumes]
    return np.asarray(out, dtype=np.float64)
