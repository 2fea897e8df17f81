"""Rule assemble_features: per-case long tables into the wide table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import features as features_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    features_stages.assemble_features,
    parts=list(snakemake.input.parts),
    out=snakemake.output[0],
    radiomics=snakemake.params.radiomics,
    grid=int(snakemake.wildcards.grid),
    box=snakemake.params.box,
    normalisation=snakemake.params.normalisation,
)
