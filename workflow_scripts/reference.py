"""Rule reference: the per-view registration reference."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.workflow import snakemake_entry, stage_reference

snakemake_entry(snakemake, stage_reference, cohort_path=snakemake.input.cohort,
                pre_dir=Path(snakemake.input.pre[0]).parent, view=snakemake.wildcards.view,
                out=snakemake.output[0], configured=snakemake.params.reference_case)
