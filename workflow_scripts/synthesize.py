"""Rule synthesize: generate the synthetic knee cohort (MRNet layout + truth folder)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.workflow import snakemake_entry, stage_synthesize

snakemake_entry(
    snakemake,
    stage_synthesize,
    settings=snakemake.params.settings,
    mrnet_root=snakemake.output.mrnet,
    truth_root=snakemake.output.truth,
)
