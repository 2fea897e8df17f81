"""Rule signal_audit: how much lesion signal survives each stage (synthetic cohorts)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import audit as audit_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    audit_stages.signal_audit,
    results=snakemake.params.results,
    experiment=snakemake.params.experiment,
    reg=snakemake.params.reg,
    grid=snakemake.params.grid,
    preprocess=snakemake.params.preprocess,
    box=snakemake.params.box,
    bootstrap=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    views=snakemake.params.views,
)
