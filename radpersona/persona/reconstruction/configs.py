"""Configurations of the reconstruction study: ``persona.reconstruction.configs`` made concrete.

A configuration's overrides (:class:`~radpersona.settings.ReconConfigOverrides`: ``box``,
``location``, ``views``, ``reg``) are filled in with ``persona.box``, ``central``, the source's views
and the first of ``registration.variants``. The settings have validated them (the schema, and
:meth:`radpersona.settings.Settings.check_views` for the views of the source); nothing is checked
here. Torch-free: the workflow names each configuration's checkpoints with this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from radpersona.layout import Layout
from radpersona.persona.masks import random_box_origin
from radpersona.settings import ReconConfigOverrides, ReconstructionSettings

__all__ = [
    "DDPM",
    "Location",
    "ReconConfig",
    "resolve_config",
    "resolve_configs",
    "reuses_pipeline_ddpm",
    "model_checkpoint",
    "config_volumes",
    "evaluation_inputs",
    "box_origins",
]


DDPM = "ddpm"
"""The pipeline's persona model among ``persona.reconstruction.models``; the others are tested against it."""


class Location(StrEnum):
    """Where the evaluated box lies (``persona.reconstruction.configs.*.location``)."""

    CENTRAL = "central"
    RANDOM = "random"


@dataclass(frozen=True)
class ReconConfig:
    """One configuration of the study (a row of the paper's table 3)."""

    name: str
    box: tuple[float, float, float]
    location: str
    views: tuple[str, ...]
    reg: str
    all_views: bool = True

    @property
    def view_label(self) -> str:
        """``all`` for all of the source's views, else the single view's name."""
        return "all" if self.all_views else "+".join(self.views)


def resolve_config(
    name: str,
    overrides: ReconConfigOverrides,
    box: Sequence[float],
    default_reg: str,
    source_views: Sequence[str],
) -> ReconConfig:
    """The configuration ``name`` with every default filled in.

    Args:
        name: the configuration's name (a key of ``persona.reconstruction.configs``).
        overrides: its overrides.
        box: the pipeline's box (``persona.box``), for a configuration that sets none.
        default_reg: the registration branch of a configuration that sets no ``reg``.
        source_views: the views the source has (``views: all`` means these).
    """
    all_views = overrides.views == "all"
    return ReconConfig(
        name,
        tuple(float(b) for b in (overrides.box if overrides.box is not None else box)),  # type: ignore[arg-type]
        str(overrides.location),
        tuple(source_views) if all_views else (overrides.views,),
        str(overrides.reg if overrides.reg is not None else default_reg),
        all_views,
    )


def resolve_configs(
    recon: ReconstructionSettings | Mapping[str, ReconConfigOverrides],
    box: Sequence[float],
    default_reg: str,
    source_views: Sequence[str],
) -> dict[str, ReconConfig]:
    """Every configuration of ``persona.reconstruction.configs`` (see :func:`resolve_config`)."""
    configs = recon.configs if isinstance(recon, ReconstructionSettings) else recon
    return {name: resolve_config(name, over, box, default_reg, source_views) for name, over in configs.items()}


def reuses_pipeline_ddpm(cfg: ReconConfig, box: Sequence[float]) -> bool:
    """True when the pipeline's ``models/ddpm_{reg}.pt`` is this configuration's DDPM (same box, all views).

    ``box`` is the pipeline's box (``persona.box``).
    """
    return tuple(float(b) for b in box) == cfg.box and cfg.all_views


def model_checkpoint(layout: Layout, cfg: ReconConfig, model: str, box: Sequence[float]) -> str:
    """The checkpoint of one model of a configuration: the pipeline's DDPM where it is the same model."""
    if model == DDPM and reuses_pipeline_ddpm(cfg, box):
        return layout.ddpm(cfg.reg)
    return layout.reconstruction_model(cfg.name, model)


def config_volumes(layout: Layout, cfg: ReconConfig, cases: Sequence[str]) -> list[str]:
    """The configuration's views of ``cases`` on its registration branch (case-major), what its models see."""
    return [layout.working(cfg.reg, c, v) for c in cases for v in cfg.views]


def evaluation_inputs(
    layout: Layout, cfg: ReconConfig, cases: Sequence[str], *, synthetic: bool
) -> dict[str, list[str]]:
    """The files the evaluation of ``cfg`` reads for ``cases`` (the valid split), by kind.

    ``volumes``: the configuration's views of the cases on its registration branch. A synthetic source
    (counterfactual fidelity) adds, as
    :func:`~radpersona.persona.reconstruction.truth_grid.lesion_truth` reads them, ``truth`` (healthy
    counterpart and lesion mask), ``raw`` and ``pre`` volumes and, on the ``reg`` branch,
    ``registration`` (the views' references, the affines, the cases' QC). Which cases have a lesion is
    known from the cohort table only, so every case's files are named.
    """
    pairs = [(c, v) for c in cases for v in cfg.views]
    inputs = {"volumes": config_volumes(layout, cfg, cases)}
    if not synthetic:
        return inputs
    inputs["truth"] = [layout.truth(c, v, kind) for c, v in pairs for kind in ("healthy", "lesion")]
    inputs["raw"] = [layout.raw(c, v) for c, v in pairs]
    inputs["pre"] = [layout.pre(c, v) for c, v in pairs]
    if cfg.reg == "reg":
        inputs["registration"] = (
            [layout.reference(v) for v in cfg.views]
            + [layout.affine(c, v) for c, v in pairs]
            + [layout.qc_case(c) for c in cases]
        )
    return inputs


def box_origins(
    cfg: ReconConfig, shape: Sequence[int], cases: Sequence[str], seed: int
) -> list[tuple[int, int, int] | None]:
    """Per case the box origin: ``None`` (central) or a seeded random origin (same for every model).

    A random origin is drawn from ``numpy.random.Generator(PCG64(derive_case_seed(seed, case)))``, so
    it depends on the case and ``seed`` (``persona.reconstruction.location_seed``) only.
    """
    if cfg.location == Location.CENTRAL:
        return [None] * len(cases)
    from radpersona.persona.sample import derive_case_seed

    return [
        random_box_origin(shape, cfg.box, np.random.Generator(np.random.PCG64(derive_case_seed(seed, c))))
        for c in cases
    ]
