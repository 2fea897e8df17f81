"""Settings of the features and the models: radiomics, fingerprint, experiments, baselines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from radpersona.settings.base import Section, fail
from radpersona.vocabulary import (
    CLASSICAL_BASELINES,
    REPRESENTATION_IMAGES,
    BetaPenalty,
    Representation,
    ThresholdProtocol,
)


@dataclass(frozen=True)
class RadiomicsSettings(Section):
    """``radiomics``: patch-wise features of original, persona and residual."""

    KEY = "radiomics"
    grids: tuple[int, ...]
    images: tuple[str, ...]
    families: tuple[str, ...]
    bin_width: float | str
    voxel_array_shift: float
    shape_mask: str
    device: str


@dataclass(frozen=True)
class FingerprintSettings(Section):
    """``fingerprint`` (merged with an experiment's overrides): usage predictor + logistic regression."""

    KEY = "fingerprint"
    GRIDS: ClassVar[tuple[str, ...]] = ("usage_threshold", "lambda_u")
    """Keys that take one value or a list of candidates (chosen per training run on its inner validation split)."""
    representation: Representation
    usage_predictor: bool
    usage_threshold: tuple[float, ...]
    """Candidates for ``T`` of the hard selection ``z = 1[u > T]`` (one value: fixed)."""
    lambda_u: tuple[float, ...]
    """Candidates for the weight of ``||u||_1`` (the sum over features, Eq. 8; one value: fixed)."""
    lambda_beta: float
    beta_penalty: BetaPenalty
    epochs: int
    batch_size: int
    learning_rate: float
    dropout: float
    resnet_widths: tuple[int, int, int, int]
    init_weights: str | None
    folds: int
    inner_validation: float
    threshold_every: int
    threshold_protocol: ThresholdProtocol
    seed: int
    device: str
    permute_labels: int | None = None
    """Negative control: the seed of a permutation of each training run's labels; ``None`` = the true labels."""
    families: tuple[str, ...] | None = None
    """Radiomic families whose columns form ``r`` (location indices always kept); ``None`` = every family
    of the feature table."""

    @classmethod
    def _build(cls, mapping: Mapping[str, Any], key: str) -> FingerprintSettings:
        """A single number for a key of :attr:`GRIDS` is a grid of one candidate."""
        return super()._build({k: _as_grid(v) if k in cls.GRIDS else v for k, v in mapping.items()}, key)

    def __post_init__(self) -> None:
        for name in self.GRIDS:
            grid = _as_grid(getattr(self, name))
            if not grid:
                raise fail(f"fingerprint.{name}", "needs at least one candidate")
            if len(set(grid)) != len(grid):
                raise fail(f"fingerprint.{name}", f"lists a candidate twice: {list(grid)}")
            object.__setattr__(self, name, tuple(float(v) for v in grid))

    @property
    def images(self) -> tuple[str, ...]:
        """Image kinds of the wide table that :attr:`representation` reads."""
        return REPRESENTATION_IMAGES[self.representation.value]

    @property
    def labels(self) -> str:
        """What the models are trained on, as every table says it: ``true`` or ``permuted (seed s)``."""
        return "true" if self.permute_labels is None else f"permuted (seed {self.permute_labels})"


def _as_grid(value: Any) -> Any:
    """``[value]`` for a single number, ``value`` otherwise (a list or tuple of candidates)."""
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value


@dataclass(frozen=True)
class FingerprintColumnsSettings(Section):
    """The ``fingerprint`` keys that select the candidate columns of a wide table: ``representation``, ``families``.

    A classical baseline receives this subset of its ``baselines.classical.features_from`` experiment,
    so that another fingerprint setting never reruns it.
    """

    KEY = "fingerprint"
    OMITS: ClassVar[tuple[str, ...]] = tuple(
        name for name in FingerprintSettings.__dataclass_fields__ if name not in ("representation", "families")
    )
    representation: Representation
    families: tuple[str, ...] | None = None

    @classmethod
    def of(cls, fingerprint: FingerprintSettings) -> FingerprintColumnsSettings:
        """The subset of a (resolved) fingerprint settings object."""
        return cls(representation=fingerprint.representation, families=fingerprint.families)


@dataclass(frozen=True)
class ExperimentSettings(Section):
    """One entry of ``experiments``, resolved: its registration branch, patch grid and fingerprint settings."""

    KEY = "experiments.proposed"
    name: str
    reg: str
    grid: int
    fingerprint: FingerprintSettings

    @classmethod
    def resolve(
        cls, name: str, overrides: Mapping[str, Any], fingerprint: Mapping[str, Any], reg: str, grid: int
    ) -> ExperimentSettings:
        """Merge an experiment's ``overrides`` over the ``fingerprint`` section and the default ``reg``/``grid``."""
        from radpersona.settings.base import _convert

        merged = {**fingerprint, **dict(overrides.get("fingerprint", {}))}
        return cls(
            name=name,
            reg=str(overrides.get("reg", reg)),
            grid=int(overrides.get("grid", grid)),
            fingerprint=_convert(FingerprintSettings, merged, f"experiments.{name}.fingerprint"),
        )

    def to_config(self) -> dict[str, object]:
        """``{reg, grid, fingerprint}`` (the resolved experiment, as rule parameters carry it)."""
        return {"reg": self.reg, "grid": self.grid, "fingerprint": self.fingerprint.to_config()}


@dataclass(frozen=True)
class ClassicalSettings(Section):
    """``baselines.classical``: scikit-learn models on an experiment's feature table."""

    KEY = "baselines.classical"
    features_from: str
    variance_threshold: float
    inner_folds: int
    C: tuple[float, ...]
    rf_trees: int
    rf_max_depth: tuple[int | None, ...]
    rf_min_samples_leaf: tuple[int, ...]


@dataclass(frozen=True)
class CNNSettings(Section):
    """``baselines.cnn``: training shared by MRNet and ELNet."""

    KEY = "baselines.cnn"
    volumes: str
    epochs: int
    learning_rate: float
    weight_decay: float
    device: str


@dataclass(frozen=True)
class MRNetSettings(Section):
    """``baselines.mrnet``: the AlexNet-like slice CNN with max-pooling over slices."""

    KEY = "baselines.mrnet"
    width: int
    init_weights: str | None
    fusion_folds: int


@dataclass(frozen=True)
class ELNetSettings(Section):
    """``baselines.elnet``: the single-view ELNet."""

    KEY = "baselines.elnet"
    K: int
    norm: str
    blur_filter: int
    dropout: float
    view: Mapping[str, str]


@dataclass(frozen=True)
class BaselinesSettings(Section):
    """``baselines``: the comparison models, on the fingerprint's folds and threshold rule."""

    KEY = "baselines"
    run: tuple[str, ...]
    seed: int
    classical: ClassicalSettings
    cnn: CNNSettings
    mrnet: MRNetSettings
    elnet: ELNetSettings

    @property
    def classical_run(self) -> tuple[str, ...]:
        """The classical baselines of :attr:`run`."""
        return tuple(b for b in self.run if b in CLASSICAL_BASELINES)

    def __post_init__(self) -> None:
        if len(set(self.run)) != len(self.run):
            raise fail("baselines.run", f"lists a baseline twice: {list(self.run)}")


__all__ = [
    "BaselinesSettings",
    "CNNSettings",
    "ClassicalSettings",
    "ELNetSettings",
    "ExperimentSettings",
    "FingerprintColumnsSettings",
    "FingerprintSettings",
    "MRNetSettings",
    "RadiomicsSettings",
]
