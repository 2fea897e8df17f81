"""Rule train_reconstruction_model: train the DDPM, GAN or ViT3D-AE of one reconstruction configuration."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import persona as persona_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    persona_stages.train_reconstruction_model,
    cohort_path=snakemake.input.cohort,
    volumes=Path(snakemake.input.volumes[0]).parent,
    checkpoint=snakemake.output[0],
    model=snakemake.wildcards.rmodel,
    config_name=snakemake.wildcards.rconfig,
    persona=snakemake.params.persona,
    default_reg=snakemake.params.default_reg,
    threads=snakemake.threads,
    source_views=snakemake.params.source_views,
)
