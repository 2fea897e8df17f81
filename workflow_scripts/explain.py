"""Rule explain: the explanation page (HTML) of one case, task and experiment."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import report as report_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    report_stages.explain,
    results=snakemake.params.results,
    case=snakemake.wildcards.case,
    task=snakemake.wildcards.task,
    experiment=snakemake.wildcards.experiment,
    reg=snakemake.params.reg,
    grid=snakemake.params.grid,
    box=snakemake.params.box,
    crop=snakemake.params.crop,
    report=snakemake.params.report,
)
