# Signal audit (issue #14): how much lesion signal survives each stage, for cohorts with truth (synthetic).
# One job over the cohort; the experiment audited is evaluation.compare_to (the fingerprint the paper's tables report).

AUDIT_EXPERIMENT = S.evaluation.compare_to
AUDIT_REG = S.experiments[AUDIT_EXPERIMENT].reg
AUDIT_GRID = S.experiments[AUDIT_EXPERIMENT].grid


rule signal_audit:
    input:
        cohort=L.cohort(),
        truth=[L.truth(c, v, kind) for c in CASES for v in SOURCE_VIEWS for kind in TRUTH_KINDS],
        raw=[L.raw(c, v) for c in CASES for v in SOURCE_VIEWS],
        pre=[L.pre(c, v) for c in CASES for v in SOURCE_VIEWS],
        working=[L.working(AUDIT_REG, c, v) for c in CASES for v in SOURCE_VIEWS],
        affines=[L.affine(c, v) for c in CASES for v in SOURCE_VIEWS] if AUDIT_REG == "reg" else [],
        residuals=[L.residual(AUDIT_REG, c, v) for c in CASES for v in SOURCE_VIEWS],
        wide=L.wide(AUDIT_REG, AUDIT_GRID),
        predictions=[L.predictions(AUDIT_EXPERIMENT, task) for task in SOURCE_TASKS],
    output:
        csv=L.signal_audit(),
        md=L.signal_audit("md"),
    params:
        results=results_folder,
        experiment=AUDIT_EXPERIMENT,
        reg=AUDIT_REG,
        grid=AUDIT_GRID,
        preprocess=S.preprocess.to_config(),
        box=list(S.persona.box),
        bootstrap=S.evaluation.bootstrap,
        seed=S.evaluation.seed,
        views=SOURCE_VIEWS,
    log:
        L.log("signal_audit"),
    benchmark:
        L.benchmark("signal_audit")
    conda:
        "../envs/registration.yaml"
    script:
        "../workflow_scripts/signal_audit.py"
