"""Rule extract_features: patch-wise radiomic features of one case (long table)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import features as features_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    features_stages.extract_features,
    case=snakemake.wildcards.case,
    volumes=Path(snakemake.input.volumes[0]).parent,
    persona_dir=Path(snakemake.input.persona[0]).parent,
    residual_dir=Path(snakemake.input.residual[0]).parent,
    out=snakemake.output[0],
    grid=int(snakemake.wildcards.grid),
    radiomics=snakemake.params.radiomics,
    box=snakemake.params.box,
    normalisation=snakemake.params.normalisation,
    threads=snakemake.threads,
    views=snakemake.params.views,
)
