"""Rule synthesize: generate the synthetic knee cohort (MRNet layout + truth folder)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import ingest as ingest_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    ingest_stages.synthesize,
    settings=snakemake.params.settings,
    source_root=snakemake.params.source_root,
    results=snakemake.params.results,
)
