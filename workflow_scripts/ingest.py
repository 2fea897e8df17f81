"""Rule ingest: read the source, check it, write the cohort table and raw volumes."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.ingest import ingest
from radpersona.workflow import snakemake_entry

snakemake_entry(snakemake, ingest, config=snakemake.params.config, cohort_path=snakemake.output.cohort,
                raw_dir=Path(snakemake.output.raw[0]).parent, truth_dir=snakemake.params.truth)
