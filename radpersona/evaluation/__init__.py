"""Evaluation of every model: metrics, paired tests, the paper's tables and figures.

- :mod:`~radpersona.evaluation.metrics`: accuracy, sensitivity, specificity at a model's own threshold,
  AUC with a bootstrap CI; the metrics table (``results/tables/metrics.csv``/``.md``).
- :mod:`~radpersona.evaluation.comparisons`: DeLong's test (AUC) and McNemar's test (accuracy) of the
  reference experiment against every other model (``comparisons.csv``/``.md``).
- :mod:`~radpersona.evaluation.tables`: the paper's layout (tables 5, 7, 8) with descriptive columns.
- :mod:`~radpersona.evaluation.plots`: ROC curves and the calibration diagram.
"""

from radpersona.evaluation.comparisons import (
    COMPARISON_COLUMNS,
    comparisons_markdown,
    comparisons_table,
    delong_covariance,
    delong_test,
    mcnemar_test,
    midranks,
)
from radpersona.evaluation.metrics import (
    METRIC_COLUMNS,
    auc,
    bootstrap_auc_ci,
    confusion_rates,
    metrics_markdown,
    metrics_table,
    summary_table,
)
from radpersona.evaluation.plots import calibration_bins, plot_calibration, plot_roc
from radpersona.evaluation.tables import (
    DESCRIPTOR_COLUMNS,
    describe_baseline,
    describe_experiment,
    paper_table,
    paper_table_markdown,
    written_tables,
)

__all__ = [
    "COMPARISON_COLUMNS",
    "DESCRIPTOR_COLUMNS",
    "METRIC_COLUMNS",
    "auc",
    "bootstrap_auc_ci",
    "calibration_bins",
    "comparisons_markdown",
    "comparisons_table",
    "confusion_rates",
    "delong_covariance",
    "delong_test",
    "describe_baseline",
    "describe_experiment",
    "mcnemar_test",
    "metrics_markdown",
    "metrics_table",
    "midranks",
    "paper_table",
    "paper_table_markdown",
    "plot_calibration",
    "plot_roc",
    "summary_table",
    "written_tables",
]
