"""Healthy personas: a conditional 3D DDPM, trained on healthy knees, that inpaints the ROI box.

Modules: ``masks`` (the box; numpy only), ``model`` (U-Net, schedule, checkpoints, intensity scale),
``train`` (``train_ddpm`` with exact resume), ``sample`` (``sample_personas``, ``load_model``,
``derive_case_seed``), ``baselines`` (the GAN and ViT-AE inpainters) and the ``reconstruction``
package (the reconstruction studies). The compute device is resolved by :mod:`radpersona.device`.

Names are imported lazily, so ``radpersona.persona.masks`` (used by the feature and localisation
steps) does not load torch and MONAI.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from radpersona.settings import BaselinePersonaSettings

_EXPORTS = {
    "box_mask": "masks",
    "box_slices": "masks",
    "box_size": "masks",
    "random_box_origin": "masks",
    "build_scheduler": "model",
    "build_unet": "model",
    "derive_case_seed": "sample",
    "load_model": "sample",
    "sample_personas": "sample",
    "TrainingStopped": "train",
    "resume_path": "train",
    "train_ddpm": "train",
}

BASELINE_PERSONA_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(BaselinePersonaSettings))
"""The ``persona`` keys a GAN or ViT-AE inpainter reads besides its own section (its training masks, intensity
scale and device): the workflow passes only these, so that a DDPM setting does not retrain it."""

__all__ = sorted([*_EXPORTS, "BASELINE_PERSONA_KEYS"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"radpersona.persona.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'radpersona.persona' has no attribute {name!r}")
