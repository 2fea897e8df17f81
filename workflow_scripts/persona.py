"""Rule persona: inpaint a healthy persona for every case; write persona and residual."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import persona as persona_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    persona_stages.persona,
    cohort_path=snakemake.input.cohort,
    volumes=Path(snakemake.input.volumes[0]).parent,
    checkpoint=snakemake.input.model,
    persona_dir=Path(snakemake.output.persona[0]).parent,
    residual_dir=Path(snakemake.output.residual[0]).parent,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
)
