"""Rule localisation: do the top fingerprint features lie in patches overlapping the true lesion?"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona import TASKS
from radpersona.workflow import snakemake_entry, stage_localisation

snakemake_entry(
    snakemake,
    stage_localisation,
    cohort_path=snakemake.input.cohort,
    fingerprints=dict(zip(TASKS, snakemake.input.fingerprints)),
    populations=dict(zip(TASKS, snakemake.input.populations)),
    out=snakemake.output[0],
    results=Path(snakemake.input.cohort).parent,
    preprocess=snakemake.params.preprocess,
    reg=snakemake.params.reg,
    box=snakemake.params.box,
    grid=snakemake.params.grid,
)
