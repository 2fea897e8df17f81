# Report: per-case explanation pages and the population summary of fingerprints (figures for --report).
# Input functions and report_outputs() live in rules/common.smk.


rule explain:
    input:
        unpack(explain_inputs),
    output:
        report(
            R("explain/{experiment}_{task}/{case}.html"),
            caption="../report/explain.rst",
            category="Explanations",
            subcategory="{experiment} {task}",
            labels={"experiment": "{experiment}", "task": "{task}", "case": "{case}"},
        ),
    params:
        experiment=lambda wc: {k: EXPERIMENTS[wc.experiment][k] for k in ("reg", "grid")},
        **REPORT_PARAMS,
    log:
        LOG("explain", "{experiment}_{task}_{case}"),
    benchmark:
        BENCH("explain", "{experiment}_{task}_{case}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/explain.py"


rule summarise_fingerprints:
    input:
        unpack(summary_inputs),
    output:
        usage=report(R("report/{experiment}_{task}/usage.png"), caption="../report/usage.rst",
                     category="Fingerprints", subcategory="{experiment} {task}",
                     labels={"experiment": "{experiment}", "task": "{task}", "figure": "usage by family, view, image"}),
        patches=report(R("report/{experiment}_{task}/patches.png"), caption="../report/patches.rst",
                       category="Fingerprints", subcategory="{experiment} {task}",
                       labels={"experiment": "{experiment}", "task": "{task}", "figure": "patch usage heatmaps"}),
        top_beta=report(R("report/{experiment}_{task}/top_beta.png"), caption="../report/top_beta.rst",
                        category="Fingerprints", subcategory="{experiment} {task}",
                        labels={"experiment": "{experiment}", "task": "{task}", "figure": "largest |beta|"}),
        lesion=report(R("report/{experiment}_{task}/lesion_overlap.png"), caption="../report/lesion_overlap.rst",
                      category="Fingerprints", subcategory="{experiment} {task}",
                      labels={"experiment": "{experiment}", "task": "{task}", "figure": "highlighted patches on the true lesion"}),
        summary=R("report/{experiment}_{task}/summary.csv"),
        lesion_table=R("report/{experiment}_{task}/lesion_overlap.csv"),
        provenance=R("report/{experiment}_{task}/provenance.json"),
    params:
        experiment=lambda wc: {k: EXPERIMENTS[wc.experiment][k] for k in ("reg", "grid")},
        **REPORT_PARAMS,
    log:
        LOG("summarise_fingerprints", "{experiment}_{task}"),
    benchmark:
        BENCH("summarise_fingerprints", "{experiment}_{task}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/summarise_fingerprints.py"
