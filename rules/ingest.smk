# Ingest: the synthetic cohort (synthetic source only), raw volumes per case, and the cohort table.
# One ingest_case job per case, so `snakemake --keep-going` finishes the other cases when one case's
# files are bad; the `ingest` rule gathers the per-case records into cohort.parquet (with folds).
import os

from radpersona.ingest import source_table_files
from radpersona.sources.mrnet import MRNetLayout
from radpersona.synthetic import cohort_cases
from radpersona.vocabulary import TRUTH_KINDS, VIEWS

if S.source.kind == "synthetic":
    # every generated case, the excluded ones too: synthesize writes them all
    GENERATED = cohort_cases(S.synthetic.n_train, S.synthetic.n_valid)
    MRNET = MRNetLayout(S.source.root)

    rule synthesize:
        output:
            volumes=[
                MRNET.volume(split, view, case)
                for case, split in zip(GENERATED["case"], GENERATED["split"])
                for view in VIEWS
            ],
            labels=MRNET.label_files(),
            truth=[L.truth(case, view, kind) for case in GENERATED["case"] for view in VIEWS for kind in TRUTH_KINDS],
            records=[L.truth_record(case) for case in GENERATED["case"]],
        params:
            settings=S.synthetic.to_config(),
            source_root=lambda wildcards: S.source.root,  # a function, as results_folder
            results=results_folder,
        log:
            L.log("synthesize"),
        benchmark:
            L.benchmark("synthesize")
        conda:
            "../envs/core.yaml"
        script:
            "../workflow_scripts/synthesize.py"


# The source files each case's ingest reads: the source's tables and the case's volumes. Outside the
# synthetic source (whose files synthesize writes), a file that does not exist is left out: its
# ingest_case job then fails alone, naming case, view and file, and `--keep-going` carries on with the
# other cases (a missing input would stop the whole DAG before anything runs).
SOURCE_FILES = {
    row["case"]: [
        f
        for f in source_table_files(S.source) + [row[f"path_{view}"] for view in SOURCE_VIEWS]
        if S.source.kind == "synthetic" or os.path.exists(f)
    ]
    for row in CASES_TABLE.to_dict("records")
}


rule ingest_case:
    input:
        source=lambda wildcards: SOURCE_FILES[wildcards.case],
    output:
        raw=[L.raw("{case}", view) for view in SOURCE_VIEWS],
        record=L.ingest_record("{case}"),
    params:
        source=S.source.to_config(),
        results=results_folder,
    log:
        L.log("ingest_case", "{case}"),
    benchmark:
        L.benchmark("ingest_case", "{case}")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/ingest.py"


rule ingest:
    input:
        records=[L.ingest_record(case) for case in CASES],
    output:
        cohort=L.cohort(),
    params:
        source=S.source.to_config(),
        # only what the folds need: a change of another fingerprint setting must not rerun ingest
        folds=S.fingerprint.folds,
        fold_seed=S.fingerprint.seed,
        results=results_folder,
    log:
        L.log("ingest"),
    benchmark:
        L.benchmark("ingest")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/ingest.py"
