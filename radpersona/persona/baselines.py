"""Baseline inpainters of the reconstruction study (paper, table 2): a 3D GAN and a ViT3D autoencoder.

Both see exactly what the DDPM sees: the healthy training cases, the views as channels, the volumes on
the model scale [-1, 1] (``persona.intensity_range`` mapped as ``to_model_scale``), and the same
training boxes (``draw_train_masks`` with ``persona.box`` and ``persona.train_masks``). Both take
``[masked context (C views, box zeroed), mask (1)]`` and predict the C views; only the box voxels of
the prediction are used and the output is ``where(mask, prediction, input)`` on the preprocess
scale, so, like the persona, a baseline reconstruction equals the input outside the box bit for bit.

- ``gan``: pix2pix-style inpainter (Isola et al. 2017; Pathak et al. 2016). Generator: MONAI's
  residual ``UNet`` (strides 2, instance norm) with a tanh output; discriminator: MONAI's 3D
  ``PatchDiscriminator`` on ``[image, mask]`` (a PatchGAN: one real/fake logit per receptive field).
  Generator loss ``L1(box) + adversarial_weight * LSGAN``; discriminator loss LSGAN (Mao et al. 2017)
  on the real volume and on the composite ``where(mask, G(x), x)``. Adam, betas (0.5, 0.999).
- ``vit_ae``: a ViT3D masked autoencoder (He et al. 2022, adapted to inpainting): the volume is cut
  into non-overlapping patches (``patch``), embedded by a strided convolution with a learned position
  embedding; every patch that touches the box is replaced by a learned mask token (masked-patch
  reconstruction), a pre-norm Transformer encoder mixes all tokens and a linear head maps each token
  back to its patch's voxels. Loss: MSE over the box voxels. AdamW.

Training is seeded (``seed`` of the baseline's section): weights from ``torch.manual_seed``, batches
and boxes from ``numpy.random.Generator(PCG64(seed))`` (same draw order as the DDPM), the rest from a
CPU ``torch.Generator``. On CUDA the forward passes run under bf16 autocast. Baseline training is not
resumable: a killed run starts again (the runs are short compared with the DDPM's).
Checkpoints hold plain tensors and JSON-like values and load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import monai
import numpy as np
import torch
from monai.networks.nets import PatchDiscriminator, UNet
from torch import nn

from radpersona.device import resolve_device
from radpersona.errors import ConfigError, InputDataError
from radpersona.persona.masks import box_mask
from radpersona.persona.model import (
    DEVICE_KEY,
    checkpoint_digest,
    from_model_scale,
    load_checkpoint_state,
    plain_settings,
    to_model_scale,
)
from radpersona.persona.train import _atomic_save, draw_train_masks
from radpersona.progress import Progress
from radpersona.settings import BaselinePersonaSettings, GANSettings, PersonaModelSettings, ViTAESettings

__all__ = [
    "BASELINE_SETTINGS",
    "BASELINE_FORMAT",
    "BaselineSettings",
    "MaskedViT3D",
    "build_generator",
    "build_discriminator",
    "build_vit_ae",
    "train_baseline",
    "load_baseline",
    "inpaint_baseline",
]

logger = logging.getLogger("radpersona")

BASELINE_FORMAT = "radpersona.persona.baseline/1"
"""Value of the ``format`` key of a baseline checkpoint; ``load_baseline`` refuses anything else."""

BaselineSettings = GANSettings | ViTAESettings
"""The section of a baseline inpainter (``persona.reconstruction.gan`` or ``.vit_ae``)."""

BASELINE_SETTINGS: dict[str, type[GANSettings] | type[ViTAESettings]] = {"gan": GANSettings, "vit_ae": ViTAESettings}
"""Baseline name (``persona.reconstruction.models`` besides ``ddpm``) -> the settings class of its section."""


def baseline_kind(section: BaselineSettings) -> str:
    """The name of the baseline whose section ``section`` is (``gan`` or ``vit_ae``)."""
    return "gan" if isinstance(section, GANSettings) else "vit_ae"


# -------------------------------------------------------------------------------------- networks
def build_generator(in_views: int, section: GANSettings) -> nn.Module:
    """GAN generator: MONAI residual U-Net, ``in_views + 1`` inputs (context, mask), tanh output."""
    channels = tuple(int(c) for c in section.generator_channels)
    unet = UNet(
        spatial_dims=3,
        in_channels=in_views + 1,
        out_channels=in_views,
        channels=channels,
        strides=(2,) * (len(channels) - 1),
        num_res_units=1,
        norm="INSTANCE",
    )
    return nn.Sequential(unet, nn.Tanh())


def build_discriminator(in_views: int, section: GANSettings) -> PatchDiscriminator:
    """PatchGAN discriminator (MONAI ``PatchDiscriminator``, 3D) on ``[image (C), mask (1)]``."""
    return PatchDiscriminator(
        spatial_dims=3,
        channels=int(section.discriminator_channels),
        in_channels=in_views + 1,
        out_channels=1,
        num_layers_d=int(section.discriminator_layers),
        norm="INSTANCE",
    )


class MaskedViT3D(nn.Module):
    """ViT3D masked autoencoder for box inpainting (see the module docstring).

    Args:
        in_views: C, views as channels. The input has ``C + 1`` channels (context, mask).
        shape: volume shape (D, H, W); each axis divisible by ``patch``.
        patch: patch size (pd, ph, pw).
        hidden_size, layers, heads, mlp_dim: Transformer width, depth, heads and MLP width.
    """

    def __init__(
        self,
        in_views: int,
        shape: Sequence[int],
        patch: Sequence[int],
        *,
        hidden_size: int,
        layers: int,
        heads: int,
        mlp_dim: int,
    ) -> None:
        super().__init__()
        self.in_views = int(in_views)
        self.shape = tuple(int(s) for s in shape)
        self.patch: tuple[int, int, int] = (int(patch[0]), int(patch[1]), int(patch[2]))
        if any(s % p for s, p in zip(self.shape, self.patch)):
            raise ConfigError(f"ViT3D patch {self.patch!r} must divide the volume shape {self.shape!r} on every axis")
        self.grid = tuple(s // p for s, p in zip(self.shape, self.patch))
        n_tokens = int(np.prod(self.grid))
        self.embed = nn.Conv3d(in_views + 1, hidden_size, kernel_size=self.patch, stride=self.patch)
        self.position = nn.Parameter(torch.zeros(1, n_tokens, hidden_size))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        nn.init.trunc_normal_(self.position, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        layer = nn.TransformerEncoderLayer(
            hidden_size,
            heads,
            dim_feedforward=mlp_dim,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, in_views * int(np.prod(self.patch)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, C + 1, D, H, W) = [context, mask]; returns (B, C, D, H, W) in [-1, 1]."""
        b = x.shape[0]
        mask = x[:, -1:]
        tokens = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, hidden)
        # a patch is masked if any of its voxels lies in the box
        masked = nn.functional.max_pool3d(mask, kernel_size=self.patch, stride=self.patch).flatten(1) > 0.5
        tokens = torch.where(masked[..., None], self.mask_token.to(tokens.dtype).expand_as(tokens), tokens)
        tokens = self.norm(self.encoder(tokens + self.position.to(tokens.dtype)))
        out = self.head(tokens)  # (B, N, C * prod(patch))
        gd, gh, gw = self.grid
        pd, ph, pw = self.patch
        out = out.view(b, gd, gh, gw, self.in_views, pd, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return torch.tanh(out.reshape(b, self.in_views, *self.shape))


def build_vit_ae(in_views: int, shape: Sequence[int], section: ViTAESettings) -> MaskedViT3D:
    """The ViT3D masked autoencoder of ``section`` (``persona.reconstruction.vit_ae``)."""
    return MaskedViT3D(
        in_views,
        shape,
        section.patch,
        hidden_size=int(section.hidden_size),
        layers=int(section.layers),
        heads=int(section.heads),
        mlp_dim=int(section.mlp_dim),
    )


def _build(in_views: int, shape: Sequence[int], section: BaselineSettings) -> nn.Module:
    if isinstance(section, GANSettings):
        return build_generator(in_views, section)
    return build_vit_ae(in_views, shape, section)


# -------------------------------------------------------------------------------------- training
def _check_volumes(volumes: np.ndarray, what: str) -> None:
    if not isinstance(volumes, np.ndarray) or volumes.ndim != 5 or volumes.shape[0] < 1:
        raise InputDataError(
            f"{what} needs a float array (N, C, D, H, W) with N >= 1", value=getattr(volumes, "shape", None)
        )
    if not np.all(np.isfinite(volumes)):
        bad = int(np.argwhere(~np.isfinite(volumes))[0][0])
        raise InputDataError(f"{what}: volume index {bad} contains NaN or infinite voxels")


def _lsgan(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return ((logits.float() - (1.0 if real else 0.0)) ** 2).mean()


def train_baseline(
    volumes: np.ndarray,
    *,
    persona: BaselinePersonaSettings | PersonaModelSettings,
    section: BaselineSettings,
    checkpoint: Path,
) -> dict[str, Any]:
    """Train a baseline inpainter on healthy volumes and write its checkpoint.

    Args:
        volumes: float32 (N, C, D, H, W), healthy training cases on the preprocess scale.
        persona: the persona keys a baseline reads (``box``, ``train_masks``, ``intensity_range``,
            ``device``): the same boxes and intensity mapping as the DDPM.
        section: the baseline's settings (``persona.reconstruction.gan`` or ``.vit_ae``); its class says
            which baseline is trained.
        checkpoint: output file.

    Returns:
        Summary: ``kind``, ``steps``, ``final_loss`` (mean of the last min(50, steps) reconstruction
        losses), ``seconds``, ``steps_per_second``, ``n_volumes``, ``in_views``, ``shape``, ``seed``,
        ``device``, ``parameters``, ``settings_hash``.

    Raises:
        InputDataError: bad volumes. CudaUnavailableError: CUDA requested but absent.
    """
    kind = baseline_kind(section)
    _check_volumes(volumes, f"{kind} training")
    shape = tuple(int(s) for s in volumes.shape[2:])
    box = [float(b) for b in persona.box]
    mode = str(persona.train_masks.value)
    intensity = persona.intensity_range
    dev = resolve_device(persona.device, DEVICE_KEY)
    use_cuda = dev.type == "cuda"
    n, views = int(volumes.shape[0]), int(volumes.shape[1])
    steps, batch_size, seed = int(section.steps), int(section.batch_size), int(section.seed)
    clip = float(section.grad_clip)
    plain = section.to_config()
    recorded = {"box": box, "train_masks": mode, "intensity_range": list(map(float, intensity)), kind: plain}
    digest = checkpoint_digest(recorded, kind=kind, in_views=views, shape=list(shape), n=n)

    torch.manual_seed(seed)
    model = _build(views, shape, section).to(dev)
    disc = build_discriminator(views, section).to(dev) if isinstance(section, GANSettings) else None
    lr = float(section.learning_rate)
    if isinstance(section, GANSettings):
        opt_g = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))  # type: ignore[union-attr]
        adv_weight = float(section.adversarial_weight)
    else:
        opt_g = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng = np.random.Generator(np.random.PCG64(seed))
    data = to_model_scale(volumes, intensity)
    bar = Progress(f"{kind} training ({n} volumes, {views} views, {'x'.join(map(str, shape))}, {dev})", total=steps)
    losses: list[float] = []
    adv_losses: list[float] = []
    start = time.perf_counter()
    model.train()
    for _ in range(steps):
        index = torch.from_numpy(rng.choice(n, size=batch_size, replace=batch_size > n))
        mask = torch.from_numpy(draw_train_masks(batch_size, shape, box, mode, rng)).to(dev, torch.float32)
        x0 = data[index].to(dev)
        inputs = torch.cat([x0 * (1.0 - mask), mask], dim=1)
        weight = mask.expand_as(x0)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_cuda):
            pred = model(inputs).float()
        if disc is not None:
            composite = torch.where(weight.bool(), pred, x0)
            # discriminator step: real volumes vs composites (generator detached)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_cuda):
                d_real = disc(torch.cat([x0, mask], 1))[-1]
                d_fake = disc(torch.cat([composite.detach(), mask], 1))[-1]
            loss_d = 0.5 * (_lsgan(d_real, True) + _lsgan(d_fake, False))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            torch.nn.utils.clip_grad_norm_(disc.parameters(), clip)
            opt_d.step()
            # generator step: L1 in the box + adversarial (LSGAN: make composites look real)
            recon = ((pred - x0).abs() * weight).sum() / weight.sum()
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_cuda):
                d_gen = disc(torch.cat([composite, mask], 1))[-1]
            adv = _lsgan(d_gen, True)
            loss = recon + adv_weight * adv
            adv_losses.append(float(adv.detach()))
        else:
            recon = ((pred - x0) ** 2 * weight).sum() / weight.sum()
            loss = recon
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt_g.step()
        losses.append(float(recon.detach()))
        bar.update(1, loss=f"{losses[-1]:.4f}")
    seconds = time.perf_counter() - start
    tail = losses[-min(50, len(losses)) :]
    summary = {
        "kind": kind,
        "steps": steps,
        "final_loss": float(np.mean(tail)),
        "final_adversarial_loss": float(np.mean(adv_losses[-min(50, len(adv_losses)) :])) if adv_losses else None,
        "seconds": seconds,
        "steps_per_second": steps / seconds if seconds > 0 else float("nan"),
        "n_volumes": n,
        "in_views": views,
        "shape": list(shape),
        "batch_size": batch_size,
        "seed": seed,
        "device": str(dev),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "settings_hash": digest,
    }
    _atomic_save(
        {
            "format": BASELINE_FORMAT,
            "kind": kind,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "section": plain_settings(plain),
            "persona": plain_settings(
                {"box": box, "train_masks": mode, "intensity_range": list(map(float, intensity))}
            ),
            "in_views": views,
            "shape": list(shape),
            "seed": seed,
            "losses": losses,
            "summary": summary,
            "versions": {"torch": str(torch.__version__), "monai": str(monai.__version__)},
        },
        Path(checkpoint),
    )
    logger.info(
        "%s training: wrote %s (%d steps, final loss %.4f, %.2f steps/s)",
        kind,
        checkpoint,
        steps,
        summary["final_loss"],
        summary["steps_per_second"],
    )
    return summary


# ------------------------------------------------------------------------------------- inference
def load_baseline(checkpoint: Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Load a baseline checkpoint (``torch.load(weights_only=True)``) in eval mode on ``device``.

    Returns:
        The network and the checkpoint's metadata (everything but the weights; ``section`` parsed
        again into the baseline's settings class).

    Raises:
        InputDataError: missing file, or not a weights-only baseline checkpoint.
    """
    state, dev = load_checkpoint_state(checkpoint, device, BASELINE_FORMAT, "baseline")
    meta = {k: v for k, v in state.items() if k != "state_dict"}
    kind = str(state["kind"])
    if kind not in BASELINE_SETTINGS:
        raise InputDataError("unknown baseline kind in checkpoint", path=checkpoint, value=kind)
    meta["section"] = BASELINE_SETTINGS[kind].from_config(state["section"])
    model = _build(int(state["in_views"]), state["shape"], meta["section"])
    model.load_state_dict(state["state_dict"])
    model.to(dev).eval()
    return model, meta


def inpaint_baseline(
    volumes: np.ndarray,
    *,
    checkpoint: Path,
    box: Sequence[float],
    origins: Sequence[Sequence[int] | None] | None = None,
    batch_size: int = 8,
    device: str = "cpu",
) -> np.ndarray:
    """Inpaint the box of every case with a trained baseline (deterministic: no sampling).

    Args:
        volumes: float32 (N, C, D, H, W) on the preprocess scale.
        checkpoint: a file written by ``train_baseline``.
        box: fractions of depth, height and width.
        origins: per case the box origin, ``None`` for central (default: all central).
        batch_size: cases per forward pass.
        device: cpu | cuda | auto.

    Returns:
        float32 (N, C, D, H, W) on the preprocess scale; equal to ``volumes`` outside each case's box.

    Raises:
        InputDataError: volumes that do not fit the checkpoint (views, shape) or an origins list of the
            wrong length.
    """
    model, meta = load_baseline(checkpoint, device)
    _check_volumes(volumes, f"{meta['kind']} inpainting")
    views, shape = int(meta["in_views"]), tuple(int(s) for s in meta["shape"])
    if volumes.shape[1] != views or tuple(volumes.shape[2:]) != shape:
        raise InputDataError(
            f"the {meta['kind']} checkpoint was trained on {views} view(s) of shape {shape}; volumes do not fit",
            path=checkpoint,
            value=volumes.shape,
        )
    n = int(volumes.shape[0])
    origins = [None] * n if origins is None else list(origins)
    if len(origins) != n:
        raise InputDataError(f"need one box origin per case: {n} cases, {len(origins)} origins")
    intensity = meta["persona"]["intensity_range"]
    masks = np.stack([box_mask(shape, box, origin=o)[None] for o in origins])  # (N, 1, D, H, W)
    dev = next(model.parameters()).device
    out = np.empty(volumes.shape, dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            x0 = to_model_scale(volumes[start:stop], intensity)
            mask = torch.from_numpy(masks[start:stop]).float()
            inputs = torch.cat([x0 * (1.0 - mask), mask], dim=1).to(dev)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                pred = model(inputs)
            generated = from_model_scale(pred.float(), intensity)
            out[start:stop] = np.where(masks[start:stop], generated, volumes[start:stop])
    return out
