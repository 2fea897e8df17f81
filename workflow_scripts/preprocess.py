"""Rule preprocess: resize and normalise one case's views."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.workflow import snakemake_entry, stage_preprocess

snakemake_entry(
    snakemake,
    stage_preprocess,
    case=snakemake.wildcards.case,
    raw=list(snakemake.input.raw),
    out=list(snakemake.output.vol),
    settings=snakemake.params.settings,
    views=snakemake.params.views,
)
