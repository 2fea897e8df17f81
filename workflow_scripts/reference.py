"""Rule reference: the per-view registration reference (one case's view or a group-wise template)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import register as register_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    register_stages.reference,
    cohort_path=snakemake.input.cohort,
    pre_dir=Path(snakemake.input.pre[0]).parent,
    view=snakemake.wildcards.view,
    out=snakemake.output.volume,
    sidecar=snakemake.output.sidecar,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
)
