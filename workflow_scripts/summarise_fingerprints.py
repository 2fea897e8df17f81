"""Rule summarise_fingerprints: population figures of one experiment's fingerprints for one task."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.explain.stages import stage_summarise_fingerprints
from radpersona.workflow import snakemake_entry

snakemake_entry(
    snakemake,
    stage_summarise_fingerprints,
    results=Path(snakemake.input.cohort).parent,
    task=snakemake.wildcards.task,
    experiment=snakemake.wildcards.experiment,
    experiment_settings=snakemake.params.experiment,
    box=snakemake.params.box,
    report=snakemake.params.report_settings,
    out_dir=Path(snakemake.output.usage).parent,
)
