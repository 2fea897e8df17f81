"""Sampling healthy personas: inpaint the box of each case with the trained conditional DDPM.

Reverse process: DDIM (Song et al. 2021, eq. 12, deterministic eta = 0, ``steps`` timesteps spaced as
MONAI's ``DDIMScheduler.set_timesteps``) or DDPM ancestral sampling (Ho et al. 2020, eq. 11; always all
``num_train_timesteps`` steps: MONAI's ``DDPMScheduler.step`` assumes consecutive timesteps, so DDPM is
not respaced here — use ``ddim`` for fewer steps).

Inpainting follows RePaint without resampling (Lugmayr et al. 2022, eq. 8): before every model call the
known region (outside the box) of x_t is replaced by the original forward-noised to t,
``sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``, and at the end the output is ``where(mask, generated, input)``
on the preprocess scale, so the persona equals the input outside the box bit for bit.

Seeding: case i draws its initial noise, its known-region noise and (DDPM) its per-step noise, in that
order, from its own ``torch.Generator`` seeded with ``seeds[i]``, on the device that samples: the whole
reverse process (noise, RePaint replacement, scheduler step in float32) stays on ``device``, so on CUDA no
volume crosses to the host between steps. A case's persona therefore does not depend on the batch it is
in, up to floating-point reassociation: on the CPU a batch of one is run as two identical rows, because
oneDNN's single-row convolution and GEMV paths round differently from the batched ones, and the tests see
bit-equal personas for batches of 1 to 3 at small shapes; at 16x32x32, a case sampled in a batch of 8 and
alone differed by about one float32 ulp (1.2e-7). On CUDA, cuDNN picks kernels by batch size. CUDA
generators draw other numbers than CPU ones from the same seed, so a persona sampled on CUDA is a
different (equally seeded) draw from the one sampled on the CPU, not the same draw rounded differently.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import DiffusionModelUNet

from radpersona.device import memory_format, place
from radpersona.errors import InputDataError
from radpersona.persona.masks import box_mask
from radpersona.persona.model import (
    build_scheduler,
    build_unet,
    from_model_scale,
    load_checkpoint_state,
    model_input,
    to_model_scale,
)
from radpersona.persona.train import CHECKPOINT_FORMAT
from radpersona.progress import Progress
from radpersona.settings import PersonaModelSettings, PersonaSampleSettings
from radpersona.vocabulary import SamplerKind

__all__ = ["check_external_model", "derive_case_seed", "load_model", "sample_personas"]

logger = logging.getLogger("radpersona")


def derive_case_seed(base_seed: int, case: str) -> int:
    """A stable per-case seed in [0, 2**63): the first 8 bytes of SHA-256 of ``"{base_seed}:{case}"``.

    Independent of the Python hash seed, the order of cases and the process.
    """
    digest = hashlib.sha256(f"{int(base_seed)}:{case}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def load_model(checkpoint: Path, device: str) -> tuple[DiffusionModelUNet, dict[str, Any]]:
    """Load a final checkpoint written by ``train_ddpm`` (EMA weights), in eval mode on ``device``.

    Loads with ``torch.load(weights_only=True)``: a file holding pickled objects other than tensors
    and plain containers is refused. The plain settings it stores are parsed again
    (:class:`~radpersona.settings.PersonaModelSettings`).

    Returns:
        The U-Net and the checkpoint's metadata (``settings``, the parsed model settings; ``in_views``,
        ``shape``, ``step``, ``seed``, ``summary``, ``versions``; everything but the weights).

    Raises:
        InputDataError: missing file, a file that is not a weights-only checkpoint of this format.
    """
    state, dev = load_checkpoint_state(checkpoint, device, CHECKPOINT_FORMAT, "DDPM")
    meta = {k: v for k, v in state.items() if k != "state_dict"}
    meta["settings"] = PersonaModelSettings.from_config(state["settings"])
    model = build_unet(int(state["in_views"]), meta["settings"].unet)
    model.load_state_dict(state["state_dict"])
    place(model, dev).eval()
    return model, meta


def check_external_model(
    checkpoint: Path, *, views: Sequence[str], shape: Sequence[int], box: Sequence[float]
) -> dict[str, Any]:
    """Check that a DDPM trained elsewhere (``persona.checkpoint``) fits this run before it makes any persona.

    Loads weights-only on the CPU (:func:`load_model`). The model must have been trained on the run's views as
    channels, in the same order (``views``), on volumes of the run's shape (``preprocess.shape``) and with the
    run's box (``persona.box``): a persona is the model's inpainting of that box in volumes of that shape.

    Returns:
        The checkpoint's metadata (as :func:`load_model`).

    Raises:
        InputDataError: the file is missing or not a weights-only DDPM checkpoint, or one of views, shape and
            box differs (the message names the file, the setting and both values).
    """
    _, meta = load_model(Path(checkpoint), "cpu")
    stored_views = meta.get("views")
    if stored_views is None:
        raise InputDataError(
            "persona.checkpoint: the model records no view names (trained before they were stored); retrain it",
            path=checkpoint,
            value=f"{meta['in_views']} view(s)",
        )
    if list(stored_views) != list(views):
        raise InputDataError(
            f"persona.checkpoint: the model was trained on views {list(stored_views)}, the source has {list(views)}",
            path=checkpoint,
            value=list(stored_views),
        )
    if [int(s) for s in meta["shape"]] != [int(s) for s in shape]:
        raise InputDataError(
            f"persona.checkpoint: the model was trained on volumes of shape {list(meta['shape'])}, "
            f"preprocess.shape is {[int(s) for s in shape]}",
            path=checkpoint,
            value=list(meta["shape"]),
        )
    trained_box, run_box = [float(b) for b in meta["settings"].box], [float(b) for b in box]
    if trained_box != run_box:
        raise InputDataError(
            f"persona.checkpoint: the model was trained with box {trained_box}, persona.box is {run_box}",
            path=checkpoint,
            value=trained_box,
        )
    return meta


def _check_inputs(volumes: np.ndarray, seeds: Sequence[int], views: int) -> None:
    if not isinstance(volumes, np.ndarray) or volumes.ndim != 5:
        raise InputDataError("persona sampling needs volumes (N, C, D, H, W)", value=getattr(volumes, "shape", None))
    if volumes.shape[1] != views:
        raise InputDataError(
            f"the checkpoint was trained on {views} view(s) as channels but the volumes have {volumes.shape[1]}",
            value=volumes.shape,
        )
    if len(seeds) != volumes.shape[0]:
        raise InputDataError(f"need one seed per case: {volumes.shape[0]} cases, {len(seeds)} seeds")
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= int(s) < 2**63:
            raise InputDataError(f"seed of case index {i} must be an integer in [0, 2**63)", value=s)
    if not np.all(np.isfinite(volumes)):
        bad = int(np.argwhere(~np.isfinite(volumes))[0][0])
        raise InputDataError(f"volume of case index {bad} contains NaN or infinite voxels")


def sample_personas(
    volumes: np.ndarray,
    *,
    checkpoint: Path,
    sample: PersonaSampleSettings,
    box: Sequence[float],
    seeds: Sequence[int],
    device: str = "cpu",
    origin: Sequence[int] | None = None,
) -> np.ndarray:
    """Inpaint the box of every case and return the healthy personas.

    Args:
        volumes: float32 (N, C, D, H, W) on the preprocess scale (the checkpoint's ``intensity_range``).
        checkpoint: final checkpoint of ``train_ddpm``.
        sample: ``persona.sample``: ``sampler`` (``ddim``: eta = 0, ``steps`` steps; ``ddpm``: ancestral,
            ``steps`` equal to ``num_train_timesteps``), ``steps`` and ``batch_size`` (cases per U-Net
            call; does not change the result). Its ``seed`` is not read: ``seeds`` are.
        box: fractions of depth, height and width (``persona.box``).
        seeds: one seed per case (see ``derive_case_seed``).
        device: cpu | cuda | auto (bf16 autocast on CUDA).
        origin: box origin; ``None`` for the central box.

    Returns:
        Personas, float32 (N, C, D, H, W) on the preprocess scale; equal to ``volumes`` outside the box.

    Raises:
        InputDataError: volumes/seeds do not fit the checkpoint.
    """
    model, meta = load_model(checkpoint, device)
    dev = next(model.parameters()).device
    settings: PersonaModelSettings = meta["settings"]
    views = int(meta["in_views"])
    _check_inputs(volumes, seeds, views)
    sampler, steps, batch_size = sample.sampler, int(sample.steps), int(sample.batch_size)
    total_t = int(settings.num_train_timesteps)
    scheduler = build_scheduler(settings, sampler)
    if sampler == SamplerKind.DDIM:
        scheduler.set_timesteps(steps)
        timesteps = [int(t) for t in scheduler.timesteps]
    else:  # ancestral: every step (persona.sample.steps = num_train_timesteps, checked by the settings)
        timesteps = list(range(total_t - 1, -1, -1))
    intensity = settings.intensity_range
    shape = tuple(int(s) for s in volumes.shape[2:])
    inside = box_mask(shape, box, origin=origin)
    mask = torch.from_numpy(inside)[None, None].float().to(dev)
    known_region = ~mask.bool()
    alphas = scheduler.alphas_cumprod.float().to(dev)
    n = int(volumes.shape[0])
    use_cuda = dev.type == "cuda"
    layout = memory_format(dev)
    bar = Progress(
        f"persona sampling ({sampler.value}, {len(timesteps)} steps, {n} cases, {dev})",
        total=len(timesteps) * -(-n // batch_size),
        unit="step",
    )
    personas = np.empty(volumes.shape, dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            rows = stop - start
            x0 = to_model_scale(volumes[start:stop], intensity).to(dev)
            context = x0 * (1.0 - mask)
            gens = [torch.Generator(device=dev).manual_seed(int(s)) for s in seeds[start:stop]]
            x = torch.stack([torch.randn((views, *shape), generator=g, device=dev) for g in gens])
            for t in timesteps:
                eps = torch.stack([torch.randn((views, *shape), generator=g, device=dev) for g in gens])
                known = alphas[t].sqrt() * x0 + (1.0 - alphas[t]).sqrt() * eps
                x = torch.where(known_region, known, x)
                inputs = model_input(x, context, mask).contiguous(memory_format=layout)
                if rows == 1:  # see module docstring: keep the CPU result batch-independent
                    inputs = torch.cat([inputs, inputs])
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_cuda):
                    out = model(inputs, torch.full((inputs.shape[0],), t, device=dev, dtype=torch.long))
                out = out[:rows].float()
                if sampler == SamplerKind.DDIM:
                    x, _ = scheduler.step(out, t, x)  # eta = 0: deterministic given x_t
                else:
                    x = torch.cat(
                        [scheduler.step(out[i : i + 1], t, x[i : i + 1], generator=gens[i])[0] for i in range(rows)]
                    )
                bar.update(1)
            generated = from_model_scale(x, intensity)
            personas[start:stop] = np.where(inside[None, None], generated, volumes[start:stop])
    return personas
