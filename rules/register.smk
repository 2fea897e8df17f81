# Register: NiftyReg reg_aladin of every view to a per-view reference (one case's views, or a
# group-wise template of healthy training cases), with QC. {reg}=noreg reads volumes/pre instead.


# cases a reference may be built from: the training cases, plus a configured reference case
REFERENCE_CANDIDATES = TRAIN_CASES + [
    case for case in [S.registration.reference_case] if case is not None and case not in TRAIN_CASES
]


rule reference:
    input:
        cohort=L.cohort(),
        pre=[L.pre(case, "{view}") for case in REFERENCE_CANDIDATES],
    output:
        volume=L.reference("{view}"),
        sidecar=L.reference_sidecar("{view}"),
    params:
        settings=S.registration.to_config(),
        results=results_folder,
    threads: 1
    log:
        L.log("reference", "{view}"),
    benchmark:
        L.benchmark("reference", "{view}")
    conda:
        "../envs/registration.yaml"
    script:
        "../workflow_scripts/reference.py"


rule register:
    input:
        pre=[L.pre("{case}", view) for view in SOURCE_VIEWS],
        references=[L.reference(view) for view in SOURCE_VIEWS],
    output:
        vol=[L.registered("{case}", view) for view in SOURCE_VIEWS],
        aff=[L.affine("{case}", view) for view in SOURCE_VIEWS],
        qc=L.qc_case("{case}"),
    params:
        settings=S.registration.to_config(),
        views=SOURCE_VIEWS,
        results=results_folder,
    threads: 1
    log:
        L.log("register", "{case}"),
    benchmark:
        L.benchmark("register", "{case}")
    conda:
        "../envs/registration.yaml"
    script:
        "../workflow_scripts/register.py"


rule registration_qc:
    input:
        parts=[L.qc_case(case) for case in CASES],
    output:
        qc=L.qc(),
    params:
        results=results_folder,
    log:
        L.log("registration_qc"),
    benchmark:
        L.benchmark("registration_qc")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/registration_qc.py"
