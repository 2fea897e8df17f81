"""Rule registration_qc: gather per-case QC rows into qc.parquet."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.registration import stage_registration_qc
from radpersona.workflow import snakemake_entry

snakemake_entry(snakemake, stage_registration_qc, parts=list(snakemake.input), out=snakemake.output[0])
