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
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

from radpersona.errors import ConfigError, InputDataError, RadpersonaError
from radpersona.persona.masks import box_size

__all__ = [
    "PredictionType",
    "SamplerKind",
    "MaskMode",
    "CudaUnavailableError",
    "validate_settings",
    "plain_settings",
    "settings_hash",
    "build_unet",
    "build_scheduler",
    "resolve_device",
    "to_model_scale",
    "from_model_scale",
    "model_input",
]


class PredictionType(StrEnum):
    """What the U-Net predicts (``persona.prediction_type``)."""

    EPSILON = "epsilon"
    V_PREDICTION = "v_prediction"
    SAMPLE = "sample"  # x0 itself (MONAI's name)


class SamplerKind(StrEnum):
    """Reverse process used to sample personas (``persona.sample.sampler``)."""

    DDIM = "ddim"
    DDPM = "ddpm"


class MaskMode(StrEnum):
    """Where training boxes lie (``persona.train_masks``)."""

    CENTRAL = "central"
    RANDOM = "random"
    MIXED = "mixed"


class CudaUnavailableError(RadpersonaError, RuntimeError):
    """CUDA was requested but this torch build or machine has none (never a silent CPU fallback)."""


def _require(settings: Mapping[str, Any], key: str, where: str = "persona") -> Any:
    if not isinstance(settings, Mapping) or key not in settings:
        raise ConfigError(f"missing config key {where}.{key}")
    return settings[key]


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a positive integer, not {value!r}")
    return value


def validate_settings(settings: Mapping[str, Any]) -> None:
    """Check the ``persona`` config section that the model and training read.

    Raises:
        ConfigError: naming the key and the bad value.
    """
    pt = _require(settings, "prediction_type")
    if pt not in PredictionType.__members__.values():
        raise ConfigError(f"persona.prediction_type must be one of {[p.value for p in PredictionType]}, not {pt!r}")
    _positive_int(_require(settings, "num_train_timesteps"), "persona.num_train_timesteps")
    box_size((64, 64, 64), _require(settings, "box"))  # three fractions in (0, 1], named persona.box
    b0, b1 = float(_require(settings, "beta_start")), float(_require(settings, "beta_end"))
    if not (0.0 < b0 < b1 < 1.0):
        raise ConfigError(f"persona.beta_start and beta_end must satisfy 0 < start < end < 1, not {b0!r}, {b1!r}")
    lo, hi = _intensity_range(settings)
    if not lo < hi:
        raise ConfigError(f"persona.intensity_range must be [low, high] with low < high, not {[lo, hi]!r}")
    mode = _require(settings, "train_masks")
    if mode not in MaskMode.__members__.values():
        raise ConfigError(f"persona.train_masks must be one of {[m.value for m in MaskMode]}, not {mode!r}")
    unet = _require(settings, "unet")
    channels = list(_require(unet, "channels", "persona.unet"))
    attention = list(_require(unet, "attention_levels", "persona.unet"))
    groups = _positive_int(_require(unet, "norm_num_groups", "persona.unet"), "persona.unet.norm_num_groups")
    _positive_int(_require(unet, "num_res_blocks", "persona.unet"), "persona.unet.num_res_blocks")
    if not channels or len(channels) != len(attention):
        raise ConfigError(
            f"persona.unet.channels {channels!r} and attention_levels {attention!r} must be non-empty and of equal length"
        )
    for c in channels:
        if _positive_int(c, "persona.unet.channels") % groups:
            raise ConfigError(f"persona.unet.channels {channels!r} must all be multiples of norm_num_groups {groups}")
    train = _require(settings, "train")
    for key in ("steps", "batch_size", "checkpoint_every"):
        _positive_int(_require(train, key, "persona.train"), f"persona.train.{key}")
    if not float(_require(train, "learning_rate", "persona.train")) > 0:
        raise ConfigError(f"persona.train.learning_rate must be positive, not {train['learning_rate']!r}")
    if float(_require(train, "weight_decay", "persona.train")) < 0:
        raise ConfigError(f"persona.train.weight_decay must be >= 0, not {train['weight_decay']!r}")
    if not 0.0 <= float(_require(train, "ema_decay", "persona.train")) < 1.0:
        raise ConfigError(f"persona.train.ema_decay must be in [0, 1), not {train['ema_decay']!r}")
    if not float(_require(train, "grad_clip", "persona.train")) > 0:
        raise ConfigError(f"persona.train.grad_clip must be positive, not {train['grad_clip']!r}")
    gamma = train.get("min_snr_gamma")
    if gamma is not None and (isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma > 0):
        raise ConfigError(f"persona.train.min_snr_gamma must be a positive number or null, not {gamma!r}")
    seed = _require(train, "seed", "persona.train")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"persona.train.seed must be a non-negative integer, not {seed!r}")


def plain_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy made of JSON types only (tuples become lists), safe for ``weights_only`` checkpoints.

    Raises:
        ConfigError: a value is not JSON-serialisable.
    """
    try:
        return json.loads(json.dumps(copy.deepcopy(dict(settings)), sort_keys=True))
    except TypeError as exc:
        raise ConfigError(f"persona settings must hold plain values (numbers, strings, lists, dicts): {exc}") from exc


def settings_hash(settings: Mapping[str, Any], **extra: Any) -> str:
    """SHA-256 of the settings and any ``extra`` plain values (e.g. a data fingerprint), canonical JSON."""
    payload = {"settings": plain_settings(settings), **extra}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_unet(in_views: int, settings: Mapping[str, Any]) -> DiffusionModelUNet:
    """The conditional 3D U-Net: ``2 * in_views + 1`` input channels, ``in_views`` output channels.

    Args:
        in_views: C, the number of views stacked as channels (3 normally, 1 for single-view sources).
        settings: the ``persona`` config section (reads ``unet``).

    Raises:
        ConfigError: invalid ``in_views`` or ``persona.unet`` values.
    """
    if isinstance(in_views, bool) or not isinstance(in_views, int) or in_views < 1:
        raise ConfigError(f"in_views must be a positive integer (views as channels), not {in_views!r}")
    unet = _require(settings, "unet")
    channels = tuple(int(c) for c in _require(unet, "channels", "persona.unet"))
    attention = tuple(bool(a) for a in _require(unet, "attention_levels", "persona.unet"))
    groups = _positive_int(_require(unet, "norm_num_groups", "persona.unet"), "persona.unet.norm_num_groups")
    if len(channels) != len(attention) or any(c % groups for c in channels):
        raise ConfigError(
            f"persona.unet: channels {list(channels)} need one attention level each and must be multiples of "
            f"norm_num_groups {groups}"
        )
    return DiffusionModelUNet(
        spatial_dims=3,
        in_channels=2 * in_views + 1,
        out_channels=in_views,
        channels=channels,
        attention_levels=attention,
        num_res_blocks=_positive_int(_require(unet, "num_res_blocks", "persona.unet"), "persona.unet.num_res_blocks"),
        norm_num_groups=groups,
        # heads of at most 8 channels; MONAI needs the mid-block width to be a multiple of this
        num_head_channels=min(8, channels[-1]),
    )


def build_scheduler(settings: Mapping[str, Any], kind: str = "ddpm") -> DDPMScheduler | DDIMScheduler:
    """The noise schedule (linear beta, paper section 5.2.1) as a MONAI scheduler.

    ``clip_sample`` is on: the predicted x0 is clipped to the model scale [-1, 1] at every reverse step.

    Args:
        settings: the ``persona`` section (``num_train_timesteps``, ``beta_start``, ``beta_end``,
            ``prediction_type``).
        kind: ``"ddpm"`` (training and ancestral sampling) or ``"ddim"``.
    """
    if kind not in SamplerKind.__members__.values():
        raise ConfigError(f"scheduler kind must be one of {[s.value for s in SamplerKind]}, not {kind!r}")
    pt = _require(settings, "prediction_type")
    if pt not in PredictionType.__members__.values():
        raise ConfigError(f"persona.prediction_type must be one of {[p.value for p in PredictionType]}, not {pt!r}")
    common = dict(
        num_train_timesteps=_positive_int(_require(settings, "num_train_timesteps"), "persona.num_train_timesteps"),
        schedule="linear_beta",
        beta_start=float(_require(settings, "beta_start")),
        beta_end=float(_require(settings, "beta_end")),
        prediction_type=str(pt),
        clip_sample=True,
    )
    if kind == SamplerKind.DDPM:
        return DDPMScheduler(**common)
    return DDIMScheduler(**common)


def resolve_device(device: str) -> torch.device:
    """Turn ``cpu`` | ``cuda`` | ``cuda:N`` | ``auto`` into a torch device.

    Raises:
        CudaUnavailableError: CUDA requested but not available (no silent fallback to the CPU).
        ConfigError: any other value.
    """
    text = str(device)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise CudaUnavailableError(
                f"persona.device {text!r} requested but CUDA is not available (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda}); set persona.device to cpu or auto"
            )
        return torch.device(text)
    raise ConfigError(f"persona.device must be cpu, cuda or auto, not {device!r}")


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
    dev = resolve_device(device)
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


def _intensity_range(settings: Mapping[str, Any]) -> tuple[float, float]:
    rng = settings.get("intensity_range", [0.0, 1.0]) if isinstance(settings, Mapping) else [0.0, 1.0]
    if not isinstance(rng, Sequence) or len(rng) != 2:
        raise ConfigError(f"persona.intensity_range must be [low, high], not {rng!r}")
    return float(rng[0]), float(rng[1])


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
