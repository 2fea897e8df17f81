"""Rule train_baseline: one baseline and task over every fold; predictions in the fingerprint's schema."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import baselines as baselines_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    baselines_stages.train_baseline,
    results=snakemake.params.results,
    baseline=snakemake.wildcards.baseline,
    task=snakemake.wildcards.task,
    baselines=snakemake.params.baselines,
    inner_validation=snakemake.params.inner_validation,
    threads=snakemake.threads,
    table=snakemake.input.get("table"),
    columns=snakemake.params.columns,
)
