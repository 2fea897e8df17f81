"""Rule reference: the per-view registration reference (one case's view or a group-wise template)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import register as register_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    register_stages.reference,
    view=snakemake.wildcards.view,
    settings=snakemake.params.settings,
    results=snakemake.params.results,
    threads=snakemake.threads,
)
