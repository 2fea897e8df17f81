"""Stages of rules/evaluate.smk: metrics, the paper's tables with tests, ROC and calibration plots.

Every model (experiment or baseline) has one prediction table per task, ``predictions/{model}_{task}.parquet``;
the stages read them in ``models`` order, task by task.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from radpersona.atomic import write_csv_atomic, write_text_atomic
from radpersona.folds import PERSONA_PROTOCOLS
from radpersona.layout import Layout
from radpersona.settings import EvaluationSettings, PlotSettings
from radpersona.vocabulary import TASKS, PersonaProtocol

logger = logging.getLogger("radpersona")


def _predictions(layout: Layout, models: Sequence[str], tasks: Sequence[str]) -> dict[str, pd.DataFrame]:
    """model -> its prediction tables of every task, concatenated in ``tasks`` order."""
    return {
        model: pd.concat([pd.read_parquet(layout.predictions(model, task)) for task in tasks], ignore_index=True)
        for model in models
    }


def _labelled(markdown: str, persona_protocol: str) -> str:
    """A result table's markdown with the line on how its personas were made."""
    return f"{markdown.rstrip()}\n\n{PERSONA_PROTOCOLS[PersonaProtocol(persona_protocol)]}\n"


def metrics(
    *,
    results: str | Path,
    models: Sequence[str],
    bootstrap: int,
    seed: int,
    tasks: Sequence[str] = TASKS,
    persona_protocol: str = PersonaProtocol.CROSS_FIT,
) -> None:
    """Rule metrics: Acc, Sen, Spe, AUC per model, task, fold and split (``tables/metrics.csv`` and ``.md``).

    Args:
        results: the results folder.
        models: experiments, then baselines.
        bootstrap, seed: ``evaluation.bootstrap`` resamples of the valid AUC's CI, and their seed.
        tasks: the tasks, in row order.
        persona_protocol: ``PersonaSettings.protocol`` (the tables say how the personas were made).
    """
    from radpersona.evaluation.metrics import metrics_markdown, metrics_table, summary_table

    layout = Layout(str(results))
    preds = [pd.read_parquet(layout.predictions(model, task)) for model in models for task in tasks]
    table = metrics_table(preds, n_boot=bootstrap, seed=seed)
    write_csv_atomic(table, layout.table("metrics"))
    summary = summary_table(table)
    write_text_atomic(layout.table("metrics", "md"), _labelled(metrics_markdown(summary), persona_protocol))
    logger.info("metrics:\n%s", summary.to_string(index=False))


def tables(
    *,
    results: str | Path,
    models: Sequence[str],
    evaluation: Mapping[str, Any] | EvaluationSettings,
    descriptors: Mapping[str, Mapping[str, str]],
    tasks: Sequence[str] = TASKS,
    persona_protocol: str = PersonaProtocol.CROSS_FIT,
) -> None:
    """Rule tables: ``tables/{name}.csv``/``.md`` per table of ``evaluation.tables`` whose rows all ran, in
    the paper's layout, and ``comparisons.csv``/``.md`` (DeLong and McNemar of ``evaluation.compare_to``
    against every other model).

    Args:
        results: the results folder (``tables/metrics.csv``, the predictions, the outputs).
        models: experiments, then the baselines of ``baselines.run``.
        evaluation: the ``evaluation`` section.
        descriptors: model -> the paper's descriptive columns
            (:func:`radpersona.evaluation.tables.describe_experiment`, ``describe_baseline``).
        tasks: the tasks, in row order.
        persona_protocol: ``PersonaSettings.protocol`` (the tables say how the personas were made).
    """
    from radpersona.evaluation.comparisons import COMPARISON_SHOWN, comparisons_markdown, comparisons_table
    from radpersona.evaluation.tables import paper_table, paper_table_markdown, written_tables

    settings = EvaluationSettings.from_config(evaluation)
    layout = Layout(str(results))
    metrics_frame = pd.read_csv(layout.table("metrics"))
    for name, rows in written_tables(settings.tables, models).items():
        table = paper_table(metrics_frame, rows, descriptors, tasks)
        write_csv_atomic(table, layout.table(name))
        write_text_atomic(layout.table(name, "md"), _labelled(paper_table_markdown(table, name), persona_protocol))
        logger.info(
            "table %s:\n%s",
            name,
            table[["Method", "Type", "Acc", "Sen", "Spe", "AUC", "valid AUC"]].to_string(index=False),
        )
    comp = comparisons_table(
        _predictions(layout, models, tasks), settings.compare_to, exact_below=settings.mcnemar_exact_below
    )
    write_csv_atomic(comp, layout.table("comparisons"))
    write_text_atomic(layout.table("comparisons", "md"), _labelled(comparisons_markdown(comp), persona_protocol))
    logger.info("comparisons:\n%s", comp[COMPARISON_SHOWN].to_string(index=False))


def plots(
    *,
    results: str | Path,
    models: Sequence[str],
    plots: Mapping[str, Any] | PlotSettings,
    tasks: Sequence[str] = TASKS,
) -> None:
    """Rule plots: ``plots/roc_{task}.png`` per task and ``plots/calibration.png``, every model.

    Args:
        results: the results folder.
        models: experiments, then baselines.
        plots: ``evaluation.plots`` (the split shown, the calibration bins).
        tasks: the tasks (one ROC figure and one calibration panel each).
    """
    from radpersona.evaluation.plots import plot_calibration, plot_roc

    settings = PlotSettings.from_config(plots)
    layout = Layout(str(results))
    preds = _predictions(layout, models, tasks)
    for task in tasks:
        plot_roc(preds, task, layout.plot(f"roc_{task}"), split=settings.split)
    plot_calibration(preds, tasks, layout.plot("calibration"), split=settings.split, n_bins=settings.calibration_bins)
