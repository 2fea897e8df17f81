"""Rule train_ddpm: train the persona DDPM on healthy training cases."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.workflow import snakemake_entry, stage_train_ddpm

snakemake_entry(
    snakemake,
    stage_train_ddpm,
    cohort_path=snakemake.input.cohort,
    volumes=Path(snakemake.input.volumes[0]).parent,
    checkpoint=snakemake.output[0],
    settings=snakemake.params.settings,
    threads=snakemake.threads,
)
