"""Rule extract_features: patch-wise radiomic features of one case (long table)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import features as features_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    features_stages.extract_features,
    results=snakemake.params.results,
    reg=snakemake.wildcards.reg,
    grid=int(snakemake.wildcards.grid),
    case=snakemake.wildcards.case,
    out=snakemake.output[0],
    radiomics=snakemake.params.radiomics,
    box=snakemake.params.box,
    normalisation=snakemake.params.normalisation,
    threads=snakemake.threads,
    views=snakemake.params.views,
)
