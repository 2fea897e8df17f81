"""Rule explain: the explanation page (HTML) of one case, task and experiment."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.explain.stages import stage_explain
from radpersona.workflow import snakemake_entry

snakemake_entry(
    snakemake,
    stage_explain,
    results=Path(snakemake.input.cohort).parent,
    case=snakemake.wildcards.case,
    task=snakemake.wildcards.task,
    experiment=snakemake.wildcards.experiment,
    experiment_settings=snakemake.params.experiment,
    box=snakemake.params.box,
    report=snakemake.params.report_settings,
    out=snakemake.output[0],
)
