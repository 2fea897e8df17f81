"""Rule train_fingerprint: usage predictor + logistic regression for one experiment, task and fold."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import fingerprint as fingerprint_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    fingerprint_stages.train_fingerprint,
    results=snakemake.params.results,
    reg=snakemake.params.reg,
    grid=snakemake.params.grid,
    task=snakemake.wildcards.task,
    fold=snakemake.wildcards.fold,
    out=snakemake.output[0],
    settings=snakemake.params.settings,
    threads=snakemake.threads,
    views=snakemake.params.views,
)
