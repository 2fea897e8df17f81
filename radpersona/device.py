"""The compute device a setting names (``cpu`` | ``cuda`` | ``cuda:N`` | ``auto``), resolved once for every stage,
and the memory layout of 3-D convolutional networks and their inputs on it."""

from __future__ import annotations

from typing import Any, TypeVar

import torch

from radpersona.errors import ConfigError, RadpersonaError


class CudaUnavailableError(RadpersonaError, RuntimeError):
    """CUDA was requested but this machine has none (never a silent CPU run)."""


def resolve_device(name: str, key: str) -> torch.device:
    """Turn the value of the config key ``key`` into a :class:`torch.device`.

    ``auto`` is CUDA when available, else the CPU; ``cuda`` on a machine without CUDA is an error
    (a SLURM job without ``--gpus`` would otherwise train on the CPU for hours).

    Raises:
        CudaUnavailableError: CUDA requested but not available, naming ``key``.
        ConfigError: any other value.
    """
    text = str(name)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise CudaUnavailableError(
                f"{key} is {text!r} but CUDA is not available on this machine (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda}); set {key} to cpu or auto"
            )
        return torch.device(text)
    raise ConfigError(f"{key} must be cpu, cuda or auto, not {name!r}")


ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def memory_format(dev: torch.device) -> torch.memory_format:
    """The memory layout of a 3-D convolutional network's weights and inputs on ``dev``.

    ``channels_last_3d`` on the CPU, where oneDNN's 3-D convolutions (above all their backward pass) run faster
    in it. At the demo shape 16x48x48 on 2 cores: the persona U-Net's training step 1.65 -> 1.28 s (batch 4)
    and sampling forward 1.05 -> 0.86 s (batch 8); the usage predictor's ResNet-18 (widths 8-64, three views)
    trains an epoch of the demo fold in 0.46 s instead of 1.10 s (``benchmarks/fingerprint.py --layouts``).
    Contiguous on CUDA, where ``channels_last_3d`` measured 1.5x slower for the U-Net (H200, 32x128x128).
    """
    return torch.channels_last_3d if dev.type == "cpu" else torch.contiguous_format


def place(module: ModuleT, dev: torch.device) -> ModuleT:
    """Move ``module`` to ``dev`` in the layout of :func:`memory_format` (``Module.to`` takes ``memory_format``
    at run time; its type stubs do not say so). 5-D parameters take the layout; the others are only moved."""
    mover: Any = module
    moved: ModuleT = mover.to(dev, memory_format=memory_format(dev))
    return moved


def as_layout(volumes: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """A 5-D batch ``(B, C, D, H, W)`` on ``dev`` in the layout of :func:`memory_format` (a no-op when it is)."""
    return volumes.to(dev, non_blocking=True).contiguous(memory_format=memory_format(dev))
