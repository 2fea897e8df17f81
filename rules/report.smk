# Report: per-case explanation pages and the population summary of fingerprints (figures for --report).
# Input functions, REPORT_PARAMS and report_outputs() are in rules/common.smk (snakemake --lint: no functions
# beside rules).


rule explain:
    input:
        unpack(explain_inputs),
    output:
        report(
            L.explanation("{experiment}", "{task}", "{case}"),
            caption="../report/explain.rst",
            category="Explanations",
            subcategory="{experiment} {task}",
            labels={"experiment": "{experiment}", "task": "{task}", "case": "{case}"},
        ),
    params:
        **REPORT_PARAMS,
    log:
        L.log("explain", "{experiment}_{task}_{case}"),
    benchmark:
        L.benchmark("explain", "{experiment}_{task}_{case}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/explain.py"


rule summarise_fingerprints:
    input:
        unpack(summary_inputs),
    output:
        usage=report(L.summary("{experiment}", "{task}", "usage.png"), caption="../report/usage.rst",
                     category="Fingerprints", subcategory="{experiment} {task}",
                     labels={"experiment": "{experiment}", "task": "{task}", "figure": "usage by family, view, image"}),
        patches=report(L.summary("{experiment}", "{task}", "patches.png"), caption="../report/patches.rst",
                       category="Fingerprints", subcategory="{experiment} {task}",
                       labels={"experiment": "{experiment}", "task": "{task}", "figure": "patch usage heatmaps"}),
        top_beta=report(L.summary("{experiment}", "{task}", "top_beta.png"), caption="../report/top_beta.rst",
                        category="Fingerprints", subcategory="{experiment} {task}",
                        labels={"experiment": "{experiment}", "task": "{task}", "figure": "largest |beta|"}),
        lesion=report(L.summary("{experiment}", "{task}", "lesion_overlap.png"), caption="../report/lesion_overlap.rst",
                      category="Fingerprints", subcategory="{experiment} {task}",
                      labels={"experiment": "{experiment}", "task": "{task}", "figure": "highlighted patches on the true lesion"}),
        summary=L.summary("{experiment}", "{task}", "summary.csv"),
        lesion_table=L.summary("{experiment}", "{task}", "lesion_overlap.csv"),
        provenance=L.summary("{experiment}", "{task}", "provenance.json"),
    params:
        **REPORT_PARAMS,
    log:
        L.log("summarise_fingerprints", "{experiment}_{task}"),
    benchmark:
        L.benchmark("summarise_fingerprints", "{experiment}_{task}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/summarise_fingerprints.py"
