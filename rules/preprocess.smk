# Preprocess: resize each view to preprocess.shape and normalise intensities (per case).


rule preprocess:
    input:
        raw=expand(R("volumes/raw/{{case}}_{view}.nii.gz"), view=SOURCE_VIEWS),
    output:
        vol=expand(R("volumes/pre/{{case}}_{view}.nii.gz"), view=SOURCE_VIEWS),
    params:
        settings=config["preprocess"],
        views=SOURCE_VIEWS,
    log:
        LOG("preprocess", "{case}"),
    benchmark:
        BENCH("preprocess", "{case}")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/preprocess.py"
