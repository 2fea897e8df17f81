# Features: patch-wise radiomics of original, persona and residual (long per case, then wide).


rule extract_features:
    input:
        volumes=lambda wc: expand(f"{volumes_of(wc.reg)}/{wc.case}_{{view}}.nii.gz", view=SOURCE_VIEWS),
        persona=expand(R("volumes/persona_{{reg}}/{{case}}_{view}.nii.gz"), view=SOURCE_VIEWS),
        residual=expand(R("volumes/residual_{{reg}}/{{case}}_{view}.nii.gz"), view=SOURCE_VIEWS),
    output:
        R("features/{reg}/g{grid}/{case}.parquet"),
    params:
        radiomics=config["radiomics"],
        box=config["persona"]["box"],
        normalisation=config["preprocess"]["normalisation"],
        views=SOURCE_VIEWS,
    threads: 1
    log:
        LOG("extract_features", "{reg}_g{grid}_{case}"),
    benchmark:
        BENCH("extract_features", "{reg}_g{grid}_{case}")
    conda:
        "../envs/radiomics.yaml"
    script:
        "../workflow_scripts/extract_features.py"


rule assemble_features:
    input:
        expand(R("features/{{reg}}/g{{grid}}/{case}.parquet"), case=CASES),
    output:
        R("features/{reg}/g{grid}/table.parquet"),
    params:
        settings=lambda wc: {
            **config["radiomics"],
            "grid": int(wc.grid),
            "box": config["persona"]["box"],
            "normalisation": config["preprocess"]["normalisation"],
        },
    log:
        LOG("assemble_features", "{reg}_g{grid}"),
    benchmark:
        BENCH("assemble_features", "{reg}_g{grid}")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/assemble_features.py"
