"""Rule persona: inpaint a healthy persona for every case; write persona and residual."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import persona as persona_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    persona_stages.persona,
    results=snakemake.params.results,
    reg=snakemake.wildcards.reg,
    box=snakemake.params.box,
    cross_fit=snakemake.params.cross_fit,
    checkpoint=snakemake.params.checkpoint,
    data_range=snakemake.params.data_range,
    sample=snakemake.params.sample,
    device=snakemake.params.device,
    views=snakemake.params.views,
    threads=snakemake.threads,
)
