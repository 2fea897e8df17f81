"""Network, noise schedule, device and intensity scale of the healthy-persona DDPM.

The model is a timestep-conditioned 3D U-Net (MONAI's ``DiffusionModelUNet``) conditioned by channel
concatenation: its input is ``[x_t (C views), masked context (C views, box zeroed), mask (1)]`` and its
output has C channels (``persona.prediction_type``: the clean volume x0 (``sample``), the noise
``epsilon`` or the velocity ``v``). The forward process follows
Ho et al. (2020) with T = 1000 steps and a linear beta schedule from 1e-4 to 2e-2 (paper, section 5.2.1).
Volumes on the preprocess scale ``persona.intensity_range`` are mapped linearly to [-1, 1] for the model.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

from radpersona.device import resolve_device
from radpersona.errors import ConfigError, InputDataError
from radpersona.settings import PersonaModelSettings, UNetSettings
from radpersona.vocabulary import SamplerKind

__all__ = [
    "plain_settings",
    "checkpoint_digest",
    "build_unet",
    "build_scheduler",
    "load_checkpoint_state",
    "to_model_scale",
    "from_model_scale",
    "model_input",
]

DEVICE_KEY = "persona.device"
"""The config key of the persona models' device (named in device errors)."""


def plain_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy made of JSON types only (tuples become lists), safe for ``weights_only`` checkpoints.

    Raises:
        ConfigError: a value is not JSON-serialisable.
    """
    try:
        return json.loads(json.dumps(copy.deepcopy(dict(settings)), sort_keys=True))
    except TypeError as exc:
        raise ConfigError(f"persona settings must hold plain values (numbers, strings, lists, dicts): {exc}") from exc


def checkpoint_digest(settings: Mapping[str, Any], **extra: Any) -> str:
    """SHA-256 of plain settings and any ``extra`` plain values (e.g. a data fingerprint), canonical JSON.

    The resume key of DDPM training and the ``settings_hash`` recorded in the persona checkpoints.
    """
    payload = {"settings": plain_settings(settings), **extra}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_unet(in_views: int, unet: UNetSettings) -> DiffusionModelUNet:
    """The conditional 3D U-Net: ``2 * in_views + 1`` input channels, ``in_views`` output channels.

    Args:
        in_views: C, the number of views stacked as channels (3 normally, 1 for single-view sources).
        unet: ``persona.unet``.

    Raises:
        ConfigError: ``in_views`` is not a positive integer.
    """
    if isinstance(in_views, bool) or not isinstance(in_views, int) or in_views < 1:
        raise ConfigError(f"in_views must be a positive integer (views as channels), not {in_views!r}")
    channels = tuple(int(c) for c in unet.channels)
    return DiffusionModelUNet(
        spatial_dims=3,
        in_channels=2 * in_views + 1,
        out_channels=in_views,
        channels=channels,
        attention_levels=tuple(bool(a) for a in unet.attention_levels),
        num_res_blocks=int(unet.num_res_blocks),
        norm_num_groups=int(unet.norm_num_groups),
        # heads of at most 8 channels; MONAI needs the mid-block width to be a multiple of this
        num_head_channels=min(8, channels[-1]),
    )


def build_scheduler(settings: PersonaModelSettings, kind: str = "ddpm") -> DDPMScheduler | DDIMScheduler:
    """The noise schedule (linear beta, paper section 5.2.1) as a MONAI scheduler.

    ``clip_sample`` is on: the predicted x0 is clipped to the model scale [-1, 1] at every reverse step.

    Args:
        settings: the persona model settings (``num_train_timesteps``, ``beta_start``, ``beta_end``,
            ``prediction_type``).
        kind: ``"ddpm"`` (training and ancestral sampling) or ``"ddim"``.

    Raises:
        ConfigError: ``kind`` is not a sampler.
    """
    if kind not in SamplerKind.__members__.values():
        raise ConfigError(f"scheduler kind must be one of {[s.value for s in SamplerKind]}, not {kind!r}")
    common: dict[str, Any] = {
        "num_train_timesteps": int(settings.num_train_timesteps),
        "schedule": "linear_beta",
        "beta_start": float(settings.beta_start),
        "beta_end": float(settings.beta_end),
        "prediction_type": str(settings.prediction_type.value),
        "clip_sample": True,
    }
    if kind == SamplerKind.DDPM:
        return DDPMScheduler(**common)
    return DDIMScheduler(**common)


def load_checkpoint_state(path: str | Path, device: str, fmt: str, what: str) -> tuple[dict[str, Any], torch.device]:
    """Read a checkpoint written by this package with ``torch.load(weights_only=True)`` onto ``device``.

    Args:
        path: the checkpoint file.
        device: cpu | cuda | auto.
        fmt: the ``format`` entry the file must carry (one per kind of checkpoint).
        what: the kind, for messages (``"DDPM"``, ``"baseline"``).

    Returns:
        The checkpoint's dict and the resolved device.

    Raises:
        InputDataError: a missing file, a file holding pickled objects other than tensors and plain
            containers, or a checkpoint of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{what} checkpoint not found", path=path)
    dev = resolve_device(device, DEVICE_KEY)
    try:
        state = torch.load(path, map_location=dev, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputDataError(
            f"refusing to load {what} checkpoint: it holds objects that torch.load(weights_only=True) rejects ({exc})",
            path=path,
        ) from exc
    if not isinstance(state, dict) or state.get("format") != fmt:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise InputDataError(f"not a {what} checkpoint of format {fmt!r}", path=path, value=found)
    return state, dev


def to_model_scale(volumes: np.ndarray, intensity_range: Sequence[float]) -> torch.Tensor:
    """Map the preprocess scale ``[low, high]`` linearly to [-1, 1] (values outside are clipped)."""
    lo, hi = float(intensity_range[0]), float(intensity_range[1])
    x = torch.from_numpy(np.ascontiguousarray(volumes, dtype=np.float32))
    return (2.0 * (x - lo) / (hi - lo) - 1.0).clamp_(-1.0, 1.0)


def from_model_scale(x: torch.Tensor, intensity_range: Sequence[float]) -> np.ndarray:
    """Map [-1, 1] back to the preprocess scale, clipped to ``[low, high]``; float32 numpy."""
    lo, hi = float(intensity_range[0]), float(intensity_range[1])
    y = (x.detach().float().cpu().clamp(-1.0, 1.0) + 1.0) * 0.5 * (hi - lo) + lo
    return y.clamp_(lo, hi).numpy().astype(np.float32, copy=False)


def model_input(noisy: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Concatenate ``[x_t, masked context, mask]`` along channels (the conditioning of this model)."""
    return torch.cat([noisy, context, mask.to(noisy.dtype).expand(noisy.shape[0], 1, *noisy.shape[2:])], dim=1)
