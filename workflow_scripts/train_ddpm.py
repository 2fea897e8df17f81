"""Rule train_ddpm: train the persona DDPM on healthy training cases."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import persona as persona_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    persona_stages.train_ddpm,
    results=snakemake.params.results,
    reg=snakemake.wildcards.reg,
    checkpoint=snakemake.output[0],
    settings=snakemake.params.settings,
    views=snakemake.params.views,
    threads=snakemake.threads,
)
