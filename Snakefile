# radpersona - explainable knee-MRI diagnosis: healthy personas and radiomic fingerprints.
# Stages and files: docs/architecture.md. Run: snakemake --cores all [--use-conda] [--configfile presets/X.yaml]

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/ingest.smk"
include: "rules/preprocess.smk"
include: "rules/register.smk"
include: "rules/persona.smk"
include: "rules/features.smk"
include: "rules/fingerprint.smk"
include: "rules/baselines.smk"
include: "rules/evaluate.smk"
include: "rules/audit.smk"
include: "rules/report.smk"
include: "rules/bundle.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
