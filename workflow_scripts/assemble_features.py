"""Rule assemble_features: per-case long tables into the wide table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.workflow import snakemake_entry, stage_assemble_features

snakemake_entry(
    snakemake,
    stage_assemble_features,
    parts=list(snakemake.input),
    out=snakemake.output[0],
    settings=snakemake.params.settings,
)
