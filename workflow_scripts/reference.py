"""Rule reference: the per-view registration reference (one case's view or a group-wise template)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.registration import stage_reference
from radpersona.workflow import snakemake_entry

snakemake_entry(
    snakemake,
    stage_reference,
    cohort_path=snakemake.input.cohort,
    pre_dir=Path(snakemake.input.pre[0]).parent,
    view=snakemake.wildcards.view,
    out=snakemake.output.volume,
    sidecar=snakemake.output.sidecar,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
)
