"""Settings of evaluation, the report and compute resources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from radpersona.settings.base import Section


@dataclass(frozen=True)
class PlotSettings(Section):
    """``evaluation.plots``: ROC and calibration figures."""

    KEY = "evaluation.plots"
    split: str
    calibration_bins: int


@dataclass(frozen=True)
class EvaluationSettings(Section):
    """``evaluation``: metrics with bootstrap CIs, the paper's tables, DeLong and McNemar tests."""

    KEY = "evaluation"
    bootstrap: int
    seed: int
    compare_to: str
    mcnemar_exact_below: int
    tables: Mapping[str, tuple[str, ...]]
    plots: PlotSettings


@dataclass(frozen=True)
class ReportSettings(Section):
    """``report``: explanation pages and the population summary of fingerprints."""

    KEY = "report"
    cases: tuple[str, ...]
    auto_cases: int
    top_features: int
    slices_per_view: int
    top_beta: int
    dpi: int


@dataclass(frozen=True)
class ResourcesSettings(Section):
    """``resources``: threads of each job."""

    KEY = "resources"
    torch_threads: int
