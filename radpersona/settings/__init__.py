"""The configuration, parsed once into frozen, typed settings objects (one per section).

``Settings.parse(config)`` validates the merged configuration against the schema (keys, types,
enums, bounds), builds one settings object per section, resolves the experiments, and applies every
rule that involves more than one key. The Snakefile parses the configuration this way before it
builds the DAG, and ``radpersona check-config`` does the same, so a configuration a stage would
refuse is refused before any job runs. Torch-free.

Layers::

    config.yaml (+ --configfile presets)  ->  Settings  ->  Layout (paths)  ->  rules  ->  stages  ->  package
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from radpersona.errors import ConfigError
from radpersona.settings.base import (
    SCHEMA_PATH,
    Section,
    fail,
    fragment,
    schema,
    settings_hash,
    validate_structure,
)
from radpersona.settings.data import (
    KneeMRISettings,
    PreprocessSettings,
    PrevalenceSettings,
    RegistrationSettings,
    SourceSettings,
    SyntheticSettings,
)
from radpersona.settings.models import (
    BaselinesSettings,
    ClassicalSettings,
    CNNSettings,
    ELNetSettings,
    ExperimentSettings,
    FingerprintColumnsSettings,
    FingerprintSettings,
    MRNetSettings,
    RadiomicsSettings,
)
from radpersona.settings.outputs import EvaluationSettings, PlotSettings, ReportSettings, ResourcesSettings
from radpersona.settings.persona import (
    BaselinePersonaSettings,
    GANSettings,
    PersonaModelSettings,
    PersonaSampleSettings,
    PersonaSettings,
    PersonaTrainSettings,
    ReconConfigOverrides,
    ReconstructionSettings,
    UNetSettings,
    ViTAESettings,
    box_size,
    patchgan_output,
)
from radpersona.vocabulary import BASELINES, CNN_BASELINES, VIEWS


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated recursively by ``override`` (as Snakemake layers ``--configfile``)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_config(*paths: str | Path) -> dict[str, Any]:
    """Load and merge YAML files in order (later files override earlier), unvalidated."""
    config: dict[str, Any] = {}
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            layer = yaml.safe_load(fh) or {}
        if not isinstance(layer, Mapping):
            raise ConfigError(f"config file {str(path)!r}: top level must be a mapping, not {type(layer).__name__}")
        config = deep_merge(config, layer)
    return config


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration. Build it with :meth:`parse`."""

    results: str
    source: SourceSettings
    synthetic: SyntheticSettings
    preprocess: PreprocessSettings
    registration: RegistrationSettings
    persona: PersonaSettings
    radiomics: RadiomicsSettings
    fingerprint: FingerprintSettings
    baselines: BaselinesSettings
    evaluation: EvaluationSettings
    experiments: Mapping[str, ExperimentSettings]
    report: ReportSettings
    resources: ResourcesSettings

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> Settings:
        """Validate ``config`` (schema, then every cross-field rule) and build the settings.

        Raises:
            ConfigError: naming the offending key and value.
        """
        validate_structure(config)
        sections: dict[str, type[Section]] = {
            "source": SourceSettings,
            "synthetic": SyntheticSettings,
            "preprocess": PreprocessSettings,
            "registration": RegistrationSettings,
            "persona": PersonaSettings,
            "radiomics": RadiomicsSettings,
            "fingerprint": FingerprintSettings,
            "baselines": BaselinesSettings,
            "evaluation": EvaluationSettings,
            "report": ReportSettings,
            "resources": ResourcesSettings,
        }
        built: dict[str, Any] = {name: kind._build(config[name], name) for name, kind in sections.items()}
        default_reg = built["registration"].variants[0]
        default_grid = built["radiomics"].grids[0]
        built["experiments"] = MappingProxyType(
            {
                name: ExperimentSettings.resolve(name, over, config["fingerprint"], default_reg, default_grid)
                for name, over in config["experiments"].items()
            }
        )
        return cls(results=str(config["results"]), **built)

    def __post_init__(self) -> None:
        self._check_shapes()
        self._check_experiments()
        self._check_baselines_and_tables()

    # ------------------------------------------------------------------ cross-section rules
    def _check_shapes(self) -> None:
        shape = self.preprocess.shape
        down = self.persona.unet.downsampling
        for axis, size in enumerate(shape):
            if size % down:
                raise fail(
                    "preprocess.shape",
                    f"{list(shape)}: axis {axis} size {size} must be divisible by {down} for a U-Net with "
                    f"{len(self.persona.unet.channels)} levels (persona.unet.channels)",
                )
        box = box_size(shape, self.persona.box)
        finest = max(self.radiomics.grids)
        if min(box) < finest:
            raise fail(
                "persona.box",
                f"{list(self.persona.box)} of preprocess.shape {list(shape)} is {list(box)} voxels; a {finest}x"
                f"{finest}x{finest} patch grid (radiomics.grids) needs at least {finest} per axis",
            )
        recon = self.persona.reconstruction
        if recon is None:
            return
        if "gan" in recon.models:
            gan = recon.gan
            for axis, size in enumerate(shape):
                if size % gan.downsampling:
                    raise fail(
                        "persona.reconstruction.gan.generator_channels",
                        f"{len(gan.generator_channels)} levels need preprocess.shape divisible by "
                        f"{gan.downsampling}; axis {axis} is {size}",
                    )
            if min(patchgan_output(shape, gan.discriminator_layers)) < 1:
                raise fail(
                    "persona.reconstruction.gan.discriminator_layers",
                    f"{gan.discriminator_layers}: the PatchGAN (kernel 4) shrinks preprocess.shape {list(shape)} "
                    "to nothing; use fewer layers",
                )
        if "vit_ae" in recon.models:
            for axis, (size, patch) in enumerate(zip(shape, recon.vit_ae.patch, strict=True)):
                if size % patch:
                    raise fail(
                        "persona.reconstruction.vit_ae.patch",
                        f"{list(recon.vit_ae.patch)}: patch size {patch} does not divide preprocess.shape "
                        f"{list(shape)} on axis {axis}",
                    )
        for name, over in recon.configs.items():
            if over.reg is not None and over.reg not in ("reg", "noreg"):
                raise fail(f"persona.reconstruction.configs.{name}.reg", f"{over.reg!r} is not reg or noreg")

    def _check_experiments(self) -> None:
        for name, exp in self.experiments.items():
            if exp.reg not in self.registration.variants:
                raise fail(
                    f"experiments.{name}.reg",
                    f"{exp.reg!r} is not in registration.variants {list(self.registration.variants)}",
                )
            if exp.grid not in self.radiomics.grids:
                raise fail(
                    f"experiments.{name}.grid", f"{exp.grid} is not in radiomics.grids {list(self.radiomics.grids)}"
                )
            fp = exp.fingerprint
            missing = [i for i in fp.images if i not in self.radiomics.images]
            if missing:
                raise fail(
                    f"experiments.{name}.fingerprint.representation",
                    f"{fp.representation.value!r} reads images {list(fp.images)}, but radiomics.images "
                    f"{list(self.radiomics.images)} lacks {missing}",
                )
            if fp.families is not None:
                absent = [f for f in fp.families if f not in self.radiomics.families]
                if absent:
                    raise fail(
                        f"experiments.{name}.fingerprint.families",
                        f"{absent} are not extracted (radiomics.families {list(self.radiomics.families)})",
                    )

    def _check_baselines_and_tables(self) -> None:
        run = self.baselines.run
        clash = sorted(set(run) & set(self.experiments))
        if clash:
            raise fail("baselines.run", f"{clash} are also experiment names; rename the experiments")
        features_from = self.baselines.classical.features_from
        if self.baselines.classical_run and features_from not in self.experiments:
            raise fail(
                "baselines.classical.features_from",
                f"{features_from!r} is not an experiment; known: {sorted(self.experiments)}",
            )
        if self.evaluation.compare_to not in self.experiments:
            raise fail(
                "evaluation.compare_to",
                f"{self.evaluation.compare_to!r} is not an experiment; known: {sorted(self.experiments)}",
            )
        models = [*self.experiments, *run]
        for table, rows in self.evaluation.tables.items():
            unknown = [r for r in rows if r not in self.experiments and r not in BASELINES]
            if unknown or (run and any(r not in models for r in rows)):
                raise fail(
                    f"evaluation.tables.{table}",
                    f"{[r for r in rows if r not in models]} are neither experiments nor baselines in "
                    f"baselines.run (known: {models})",
                )

    # ------------------------------------------------------------------ rules that need the cohort
    def check_views(self, views: Sequence[str]) -> None:
        """Rules that depend on the views the source has (KneeMRI: sagittal only)."""
        views = list(views)
        recon = self.persona.reconstruction
        if recon is not None:
            for name, over in recon.configs.items():
                if over.views != "all" and over.views not in views:
                    raise fail(
                        f"persona.reconstruction.configs.{name}.views",
                        f"must be 'all' or one of the source's views {views}, not {over.views!r}",
                    )
        if "elnet" in self.baselines.run:
            for task, view in self.baselines.elnet.view.items():
                if view not in views:
                    raise fail(f"baselines.elnet.view.{task}", f"{view!r} is not among the source's views {views}")

    def check_cohort(self, cases: Sequence[str], train_cases: Sequence[str]) -> None:
        """Rules that depend on the cohort's case list (known when the workflow is parsed)."""
        known = set(cases)
        ref = self.registration.reference_case
        if ref is not None and ref not in known:
            raise fail("registration.reference_case", f"case {ref!r} is not in the cohort")
        unknown = sorted(set(self.report.cases) - known)
        if unknown:
            raise fail("report.cases", f"{unknown} not in the cohort")
        folds = max(e.fingerprint.folds for e in self.experiments.values())
        if len(train_cases) < folds:
            raise fail(
                "fingerprint.folds", f"{folds} folds need at least as many training cases, got {len(train_cases)}"
            )

    # ------------------------------------------------------------------ conveniences
    @property
    def cnn_baselines(self) -> tuple[str, ...]:
        """The CNN baselines of ``baselines.run``."""
        return tuple(b for b in self.baselines.run if b in CNN_BASELINES)

    def to_config(self) -> dict[str, Any]:
        """The plain configuration (defaults filled in; experiments as given overrides are not kept)."""
        out: dict[str, Any] = {"results": self.results}
        for name in (
            "source",
            "synthetic",
            "preprocess",
            "registration",
            "persona",
            "radiomics",
            "fingerprint",
            "baselines",
            "evaluation",
            "report",
            "resources",
        ):
            out[name] = getattr(self, name).to_config()
        out["experiments"] = {name: exp.to_config() for name, exp in self.experiments.items()}
        return out


def load_settings(*paths: str | Path) -> Settings:
    """Read, merge and parse YAML files (later files override earlier)."""
    return Settings.parse(read_config(*paths))


__all__ = [
    "ConfigError",
    "SCHEMA_PATH",
    "VIEWS",
    "BaselinePersonaSettings",
    "BaselinesSettings",
    "CNNSettings",
    "ClassicalSettings",
    "ELNetSettings",
    "EvaluationSettings",
    "ExperimentSettings",
    "FingerprintColumnsSettings",
    "FingerprintSettings",
    "GANSettings",
    "KneeMRISettings",
    "MRNetSettings",
    "PersonaModelSettings",
    "PersonaSampleSettings",
    "PersonaSettings",
    "PersonaTrainSettings",
    "PlotSettings",
    "PrevalenceSettings",
    "PreprocessSettings",
    "RadiomicsSettings",
    "ReconConfigOverrides",
    "ReconstructionSettings",
    "RegistrationSettings",
    "ReportSettings",
    "ResourcesSettings",
    "Section",
    "Settings",
    "SourceSettings",
    "SyntheticSettings",
    "UNetSettings",
    "ViTAESettings",
    "deep_merge",
    "fail",
    "fragment",
    "load_settings",
    "read_config",
    "schema",
    "settings_hash",
    "validate_structure",
]
