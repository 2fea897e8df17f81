"""Rule train_reconstruction_model: train the DDPM, GAN or ViT3D-AE of one reconstruction configuration."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import persona as persona_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    persona_stages.train_reconstruction_model,
    results=snakemake.params.results,
    checkpoint=snakemake.output[0],
    config_name=snakemake.wildcards.rconfig,
    model=snakemake.wildcards.rmodel,
    overrides=snakemake.params.overrides,
    persona=snakemake.params.persona,
    section=snakemake.params.section,
    default_reg=snakemake.params.default_reg,
    source_views=snakemake.params.source_views,
    threads=snakemake.threads,
)
