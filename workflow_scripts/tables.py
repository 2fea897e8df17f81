"""Rule tables: the paper's tables (mean +/- sd over folds, valid with bootstrap CI) and DeLong/McNemar comparisons."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import evaluate as evaluate_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    evaluate_stages.tables,
    results=snakemake.params.results,
    models=snakemake.params.models,
    tasks=snakemake.params.tasks,
    evaluation=snakemake.params.evaluation,
    descriptors=snakemake.params.descriptors,
    persona_protocol=snakemake.params.persona_protocol,
)
