"""The compute device a setting names (``cpu`` | ``cuda`` | ``cuda:N`` | ``auto``), resolved once for every stage."""

from __future__ import annotations

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
