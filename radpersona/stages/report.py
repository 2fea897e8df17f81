"""Stages of rules/report.smk: explanation pages and the population summary of fingerprints."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from radpersona.layout import Layout
from radpersona.settings import ReportSettings

logger = logging.getLogger("radpersona")


def explain(
    *,
    results: str | Path,
    case: str,
    task: str,
    experiment: str,
    reg: str,
    grid: int,
    box: Sequence[float],
    report: Mapping[str, Any] | ReportSettings,
    crop: float = 1.0,
) -> None:
    """Rule explain: ``explain/{experiment}_{task}/{case}.html``, the page of one case, task and experiment.

    Args:
        results: the results folder.
        reg, grid: the experiment's registration branch and patch grid.
        box: ``persona.box`` (the ROI the patch grid divides).
        report: the ``report`` section.
        crop: ``preprocess.crop`` (true lesions are brought to the working grid through it).
    """
    from radpersona.explain.page import ExplainSettings, explain_case

    settings = ExplainSettings.from_settings(ReportSettings.from_config(report), reg=reg, grid=grid, box=box, crop=crop)
    layout = Layout(str(results))
    explain_case(layout, case, task, experiment, settings, layout.explanation(experiment, task, case))


def summarise_fingerprints(
    *,
    results: str | Path,
    task: str,
    experiment: str,
    reg: str,
    grid: int,
    box: Sequence[float],
    report: Mapping[str, Any] | ReportSettings,
    crop: float = 1.0,
) -> None:
    """Rule summarise_fingerprints: the population figures and tables of one experiment and task
    (``report/{experiment}_{task}/``: usage, patches, top_beta, lesion_overlap, summary, provenance).

    Args:
        results: the results folder.
        reg, grid: the experiment's registration branch and patch grid.
        box: ``persona.box``.
        report: the ``report`` section.
        crop: ``preprocess.crop``.
    """
    from radpersona.explain.population import SummarySettings, summarise_fingerprints

    settings = SummarySettings.from_settings(ReportSettings.from_config(report), reg=reg, grid=grid, box=box, crop=crop)
    layout = Layout(str(results))
    summarise_fingerprints(layout, experiment, task, settings, layout.summary_dir(experiment, task))
