# Register: NiftyReg reg_aladin of every view to a per-view reference, with QC.


rule reference:
    input:
        cohort=R("cohort.parquet"),
        pre=case_volumes(R("volumes/pre")),
    output:
        R("registration/reference_{view}.nii.gz"),
    params:
        reference_case=config["registration"]["reference_case"],
    log:
        LOG("reference", "{view}"),
    benchmark:
        BENCH("reference", "{view}")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/reference.py"


rule register:
    input:
        pre=expand(R("volumes/pre/{{case}}_{view}.nii.gz"), view=VIEWS),
        references=expand(R("registration/reference_{view}.nii.gz"), view=VIEWS),
    output:
        vol=expand(R("volumes/reg/{{case}}_{view}.nii.gz"), view=VIEWS),
        aff=expand(R("volumes/reg/{{case}}_{view}.aff.txt"), view=VIEWS),
        qc=R("registration/qc/{case}.parquet"),
    params:
        settings=config["registration"],
    threads: 1
    log:
        LOG("register", "{case}"),
    benchmark:
        BENCH("register", "{case}")
    conda:
        "../envs/registration.yaml"
    script:
        "../workflow_scripts/register.py"


rule registration_qc:
    input:
        expand(R("registration/qc/{case}.parquet"), case=CASES),
    output:
        R("registration/qc.parquet"),
    log:
        LOG("registration_qc"),
    benchmark:
        BENCH("registration_qc")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/registration_qc.py"
