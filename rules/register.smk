# Register: NiftyReg reg_aladin of every view to a per-view reference (one case's views, or a
# group-wise template of healthy training cases), with QC. {reg}=noreg reads volumes/pre instead.


rule reference:
    input:
        cohort=R("cohort.parquet"),
        pre=expand(R("volumes/pre/{case}_{view}.nii.gz"), case=reference_candidates(), view="{view}"),
    output:
        volume=R("registration/reference_{view}.nii.gz"),
        sidecar=R("registration/reference_{view}.json"),
    params:
        settings=config["registration"],
    threads: 1
    log:
        LOG("reference", "{view}"),
    benchmark:
        BENCH("reference", "{view}")
    conda:
        "../envs/registration.yaml"
    script:
        "../workflow_scripts/reference.py"


rule register:
    input:
        pre=expand(R("volumes/pre/{{case}}_{view}.nii.gz"), view=SOURCE_VIEWS),
        references=expand(R("registration/reference_{view}.nii.gz"), view=SOURCE_VIEWS),
    output:
        vol=expand(R("volumes/reg/{{case}}_{view}.nii.gz"), view=SOURCE_VIEWS),
        aff=expand(R("volumes/reg/{{case}}_{view}.aff.txt"), view=SOURCE_VIEWS),
        qc=R("registration/qc/{case}.parquet"),
    params:
        settings=config["registration"],
        views=SOURCE_VIEWS,
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
