"""Settings of the healthy persona: the DDPM (U-Net, training, sampling) and the reconstruction study."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import ClassVar

from radpersona.settings.base import Section, fail
from radpersona.vocabulary import PERSONA_MODELS, MaskMode, PersonaProtocol, PredictionType, SamplerKind


def box_size(shape: Sequence[int], box: Sequence[float]) -> tuple[int, int, int]:
    """Voxels of a box of fractions ``box`` (depth, height, width) in a volume of ``shape``: at least one per axis."""
    return tuple(min(d, max(1, int(round(float(f) * d)))) for f, d in zip(box, shape, strict=True))  # type: ignore[return-value]


def patchgan_output(shape: Sequence[int], layers: int) -> list[int]:
    """Output size per axis of MONAI's PatchDiscriminator (kernel 4, padding 1; stride 2, then 1 at the end)."""
    sizes = []
    for s in shape:
        s = (int(s) - 2) // 2 + 1  # first convolution, stride 2
        for layer in range(layers):
            s = (s - 2) // (1 if layer == layers - 1 else 2) + 1
        sizes.append(s - 1)  # final convolution, stride 1
    return sizes


@dataclass(frozen=True)
class UNetSettings(Section):
    """``persona.unet``: MONAI ``DiffusionModelUNet`` widths and blocks."""

    KEY = "persona.unet"
    channels: tuple[int, ...]
    attention_levels: tuple[bool, ...]
    num_res_blocks: int
    norm_num_groups: int

    @property
    def downsampling(self) -> int:
        """Factor by which the U-Net halves the volume (``2 ** (levels - 1)``): every axis must divide by it."""
        return 2 ** (len(self.channels) - 1)

    def __post_init__(self) -> None:
        if len(self.attention_levels) != len(self.channels):
            raise fail(
                "persona.unet.attention_levels",
                f"needs one entry per channel level ({len(self.channels)}), got {len(self.attention_levels)}",
            )
        for ch in self.channels:
            if ch % self.norm_num_groups:
                raise fail(
                    "persona.unet.channels",
                    f"{ch} is not divisible by persona.unet.norm_num_groups {self.norm_num_groups}",
                )


@dataclass(frozen=True)
class PersonaTrainSettings(Section):
    """``persona.train``: optimisation of the persona DDPM."""

    KEY = "persona.train"
    steps: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    ema_decay: float
    grad_clip: float
    checkpoint_every: int
    seed: int
    min_snr_gamma: float | None = None


@dataclass(frozen=True)
class PersonaSampleSettings(Section):
    """``persona.sample``: the reverse process that inpaints personas."""

    KEY = "persona.sample"
    sampler: SamplerKind
    steps: int
    batch_size: int
    seed: int


@dataclass(frozen=True)
class GANSettings(Section):
    """``persona.reconstruction.gan``: the 3-D GAN inpainter of the reconstruction study."""

    KEY = "persona.reconstruction.gan"
    generator_channels: tuple[int, ...]
    discriminator_channels: int
    discriminator_layers: int
    adversarial_weight: float
    steps: int
    batch_size: int
    learning_rate: float
    grad_clip: float
    seed: int

    @property
    def downsampling(self) -> int:
        """Factor by which the generator halves the volume."""
        return 2 ** (len(self.generator_channels) - 1)


@dataclass(frozen=True)
class ViTAESettings(Section):
    """``persona.reconstruction.vit_ae``: the ViT3D masked autoencoder of the reconstruction study."""

    KEY = "persona.reconstruction.vit_ae"
    patch: tuple[int, int, int]
    hidden_size: int
    layers: int
    heads: int
    mlp_dim: int
    steps: int
    batch_size: int
    learning_rate: float
    grad_clip: float
    seed: int

    def __post_init__(self) -> None:
        if self.hidden_size % self.heads:
            raise fail(
                "persona.reconstruction.vit_ae.hidden_size",
                f"{self.hidden_size} must be a multiple of persona.reconstruction.vit_ae.heads {self.heads}",
            )


@dataclass(frozen=True)
class ReconConfigOverrides(Section):
    """One entry of ``persona.reconstruction.configs``: what differs from the pipeline's persona."""

    KEY = "persona.reconstruction.configs.main"
    box: tuple[float, float, float] | None = None
    location: str = "central"
    views: str = "all"
    reg: str | None = None

    def to_config(self) -> dict[str, object]:
        """Only the overrides that differ from the defaults (the form ``config.yaml`` writes them in)."""
        defaults = ReconConfigOverrides()
        return {k: v for k, v in super().to_config().items() if v != getattr(defaults, k) and v is not None}


@dataclass(frozen=True)
class ReconstructionSettings(Section):
    """``persona.reconstruction``: DDPM vs GAN vs ViT-AE (the paper's tables 2-3)."""

    KEY = "persona.reconstruction"
    in_rule_all: bool
    models: tuple[str, ...]
    configs: Mapping[str, ReconConfigOverrides]
    location_seed: int
    gan: GANSettings
    vit_ae: ViTAESettings

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in PERSONA_MODELS]
        if unknown:  # the schema's enum says the same; kept for objects built in code
            raise fail("persona.reconstruction.models", f"{unknown} not among {list(PERSONA_MODELS)}")


def _check_intensity_range(intensity_range: tuple[float, float]) -> None:
    lo, hi = intensity_range
    if lo >= hi:
        raise fail("persona.intensity_range", f"lower {lo} must be below upper {hi}")


@dataclass(frozen=True)
class BaselinePersonaSettings(Section):
    """The ``persona`` keys a GAN or ViT-AE of the reconstruction study reads besides its own section.

    Its training boxes, intensity scale and device are the DDPM's; the workflow passes only these keys
    to a baseline's jobs (``radpersona.persona.BASELINE_PERSONA_KEYS``), so that a DDPM setting never
    retrains it.
    """

    KEY = "persona"
    OMITS: ClassVar[tuple[str, ...]] = (
        "prediction_type",
        "num_train_timesteps",
        "beta_start",
        "beta_end",
        "unet",
        "train",
        "sample",
        "cross_fit",
        "checkpoint",
    )
    box: tuple[float, float, float]
    train_masks: MaskMode
    intensity_range: tuple[float, float]
    device: str

    def __post_init__(self) -> None:
        _check_intensity_range(self.intensity_range)


@dataclass(frozen=True)
class PersonaModelSettings(Section):
    """The ``persona`` keys that define the trained DDPM: everything but ``sample`` and ``reconstruction``.

    ``train_ddpm`` receives this subset, so that a sampling setting never retrains the model.
    """

    KEY = "persona"
    OMITS: ClassVar[tuple[str, ...]] = ("sample", "cross_fit", "checkpoint")
    box: tuple[float, float, float]
    train_masks: MaskMode
    prediction_type: PredictionType
    num_train_timesteps: int
    beta_start: float
    beta_end: float
    intensity_range: tuple[float, float]
    unet: UNetSettings
    train: PersonaTrainSettings
    device: str

    def __post_init__(self) -> None:
        if self.beta_end <= self.beta_start:
            raise fail("persona.beta_end", f"{self.beta_end} must exceed persona.beta_start {self.beta_start}")
        _check_intensity_range(self.intensity_range)


@dataclass(frozen=True)
class PersonaSettings(PersonaModelSettings):
    """``persona``: the conditional 3-D DDPM that inpaints a healthy persona inside ``box``."""

    KEY = "persona"
    OMITS: ClassVar[tuple[str, ...]] = ()
    sample: PersonaSampleSettings = field(default=None)  # type: ignore[assignment]  # required by the schema
    reconstruction: ReconstructionSettings | None = None
    cross_fit: bool = True
    """Every persona from a DDPM that never saw its case: one DDPM per cross-validation fold (trained on the
    healthy training cases outside it) makes that fold's personas; the DDPM on all healthy training cases
    makes the reported (valid) cases' personas. ``False``: the paper's protocol, one DDPM for every case.
    Not read when ``checkpoint`` is set."""
    checkpoint: str | None = None
    """A persona DDPM trained elsewhere (a ``train_ddpm`` checkpoint, e.g. of an MRNet run for KneeMRI), loaded
    weights-only, that makes every persona instead of DDPMs trained on this cohort: no ``train_ddpm`` job runs.
    Its views, shape and box must be the run's (checked when it is loaded). It never saw this cohort, so no
    persona can leak training-set membership whatever ``cross_fit`` says (protocol ``external``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sample is None:
            raise fail("persona.sample", "is required")
        steps, total = self.sample.steps, self.num_train_timesteps
        if self.sample.sampler == SamplerKind.DDIM and steps > total:
            raise fail("persona.sample.steps", f"{steps} DDIM steps exceed persona.num_train_timesteps {total}")
        if self.sample.sampler == SamplerKind.DDPM and steps != total:
            raise fail(
                "persona.sample.steps",
                f"is {steps} but ddpm ancestral sampling runs all persona.num_train_timesteps ({total}) steps; "
                f"set steps to {total} or use sampler ddim",
            )

    @property
    def protocol(self) -> PersonaProtocol:
        """How the personas are made: ``external`` with a ``checkpoint``, else ``cross_fit`` or ``paper``."""
        if self.checkpoint is not None:
            return PersonaProtocol.EXTERNAL
        return PersonaProtocol.CROSS_FIT if self.cross_fit else PersonaProtocol.PAPER

    @property
    def model(self) -> PersonaModelSettings:
        """The subset that defines the trained model."""
        names = [f.name for f in fields(PersonaModelSettings)]
        return PersonaModelSettings(**{name: getattr(self, name) for name in names})
