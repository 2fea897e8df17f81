# Features: patch-wise radiomics of original, persona and residual (long per case, then wide).

# input and parameter functions are lambdas (the linter wants no `def` beside rules)


rule extract_features:
    input:
        # every image of radiomics.images, every view, in the {reg} branch
        images=lambda wc: [L.image(image, wc.reg, wc.case, view) for image in S.radiomics.images for view in SOURCE_VIEWS],
    output:
        L.features("{reg}", "{grid}", "{case}"),
    params:
        results=results_folder,
        radiomics=S.radiomics.to_config(),
        box=list(S.persona.box),
        normalisation=S.preprocess.normalisation,
        views=SOURCE_VIEWS,
    threads: 1
    log:
        L.log("extract_features", "{reg}_g{grid}_{case}"),
    benchmark:
        L.benchmark("extract_features", "{reg}_g{grid}_{case}")
    conda:
        "../envs/radiomics.yaml"
    script:
        "../workflow_scripts/extract_features.py"


rule assemble_features:
    input:
        parts=lambda wc: [L.features(wc.reg, wc.grid, case) for case in CASES],
    output:
        L.wide("{reg}", "{grid}"),
    params:
        radiomics=S.radiomics.to_config(),
        box=list(S.persona.box),
        normalisation=S.preprocess.normalisation,
    log:
        L.log("assemble_features", "{reg}_g{grid}"),
    benchmark:
        L.benchmark("assemble_features", "{reg}_g{grid}")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/assemble_features.py"
