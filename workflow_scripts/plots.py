"""Rule plots: ROC curves per task and a calibration plot of every model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import evaluate as evaluate_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    evaluate_stages.plots,
    results=snakemake.params.results,
    models=snakemake.params.models,
    tasks=snakemake.params.tasks,
    plots=snakemake.params.plots,
)
