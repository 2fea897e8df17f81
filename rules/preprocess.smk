# Preprocess: crop each slice to preprocess.crop, resize each view to preprocess.shape and normalise intensities (per case).


rule preprocess:
    input:
        raw=[L.raw("{case}", view) for view in SOURCE_VIEWS],
    output:
        vol=[L.pre("{case}", view) for view in SOURCE_VIEWS],
    params:
        settings=S.preprocess.to_config(),
        views=SOURCE_VIEWS,
        results=results_folder,
    log:
        L.log("preprocess", "{case}"),
    benchmark:
        L.benchmark("preprocess", "{case}")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/preprocess.py"
