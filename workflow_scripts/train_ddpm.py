"""Rule train_ddpm: train the persona DDPM on healthy training cases."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import persona as persona_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    persona_stages.train_ddpm,
    cohort_path=snakemake.input.cohort,
    volumes=Path(snakemake.input.volumes[0]).parent,
    checkpoint=snakemake.output[0],
    settings=snakemake.params.settings,
    threads=snakemake.threads,
)
