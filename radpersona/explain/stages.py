"""Entry points of the Snakemake rules ``explain`` and ``summarise_fingerprints`` (plain settings in)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from radpersona.explain.page import ExplainSettings, explain_case
from radpersona.explain.population import SummarySettings, summarise_fingerprints


def stage_explain(
    results: str | Path,
    case: str,
    task: str,
    experiment: str,
    experiment_settings: Mapping[str, Any],
    box: Sequence[float],
    report: Mapping[str, Any],
    out: str | Path,
) -> None:
    """Rule explain: the page of one case, task and experiment (``experiment_settings``: reg and grid)."""
    settings = ExplainSettings(
        reg=experiment_settings["reg"],
        grid=int(experiment_settings["grid"]),
        box=tuple(float(b) for b in box),
        top_features=int(report["top_features"]),
        slices_per_view=int(report["slices_per_view"]),
        dpi=int(report["dpi"]),
    )
    explain_case(results, case, task, experiment, settings, out)


def stage_summarise_fingerprints(
    results: str | Path,
    task: str,
    experiment: str,
    experiment_settings: Mapping[str, Any],
    box: Sequence[float],
    report: Mapping[str, Any],
    out_dir: str | Path,
) -> None:
    """Rule summarise_fingerprints: the population figures and tables of one experiment and task."""
    settings = SummarySettings(
        reg=experiment_settings["reg"],
        grid=int(experiment_settings["grid"]),
        box=tuple(float(b) for b in box),
        top_beta=int(report["top_beta"]),
        dpi=int(report["dpi"]),
    )
    summarise_fingerprints(results, experiment, task, settings, out_dir)
