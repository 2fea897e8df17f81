"""Rule plots: ROC curves per task and a calibration plot of every model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import evaluate as evaluate_stages
from radpersona.stages.snakemake import run_rule

tasks = [Path(p).stem.removeprefix("roc_") for p in snakemake.output.roc]
run_rule(
    snakemake,
    evaluate_stages.plots,
    predictions={
        m: [p for p in snakemake.input if Path(p).stem.rsplit("_", 1)[0] == m] for m in snakemake.params.models
    },
    tasks=tasks,
    roc_out=list(snakemake.output.roc),
    calibration_out=snakemake.output.calibration,
    split=snakemake.params.split,
    n_bins=snakemake.params.n_bins,
)
