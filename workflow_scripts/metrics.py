"""Rule metrics: Acc, Sen, Spe and AUC per experiment, task, fold and split."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import evaluate as evaluate_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    evaluate_stages.metrics,
    results=snakemake.params.results,
    models=snakemake.params.models,
    tasks=snakemake.params.tasks,
    bootstrap=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    persona_protocol=snakemake.params.persona_protocol,
)
