# Bundle: what `radpersona diagnose` needs to explain a new exam with one experiment's model of one task
# (references, the persona model of the reported cases: the all-cases DDPM or persona.checkpoint, the
# all-of-train fingerprint model, settings, versions, checksums).
from radpersona.ingest import source_directions

# the orientation of the cohort's source images, read once (an exam in another orientation is refused)
BUNDLE_DIRECTIONS = source_directions(S.source, CASES_TABLE, SOURCE_VIEWS)
# the settings a diagnosis reads (config.json of the bundle): the experiment's branch, grid and fingerprint
bundle_settings = lambda wc: {
    "reg": S.experiments[wc.experiment].reg,
    "grid": S.experiments[wc.experiment].grid,
    "source_kind": S.source.kind,
    "preprocess": S.preprocess.to_config(),
    "registration": S.registration.to_config(),
    "persona": {"box": list(S.persona.box), "sample": S.persona.sample.to_config(), "device": S.persona.device},
    "radiomics": S.radiomics.to_config(),
    "fingerprint": S.experiments[wc.experiment].fingerprint.to_config(),
    "report": S.report.to_config(),
    "torch_threads": THREADS,  # diagnose's default: the persona and fingerprint rules' threads
}
# the references (reg experiments) and the first one's sidecar (the reg_aladin version that made them)
bundle_references = lambda wc: (
    [L.reference(v) for v in SOURCE_VIEWS] + [L.reference_sidecar(SOURCE_VIEWS[0])]
    if S.experiments[wc.experiment].reg == "reg"
    else []
)


rule bundle:
    input:
        cohort=L.cohort(),
        references=bundle_references,
        ddpm=lambda wc: reported_persona_model(S.experiments[wc.experiment].reg),
        model=L.fingerprint_model("{experiment}", "{task}", "all"),
        table=lambda wc: L.wide(S.experiments[wc.experiment].reg, S.experiments[wc.experiment].grid),
        predictions=L.predictions("{experiment}", "{task}"),
    output:
        directory(L.bundle_dir("{experiment}", "{task}")),
    params:
        results=results_folder,
        settings=bundle_settings,
        views=SOURCE_VIEWS,
        directions=BUNDLE_DIRECTIONS,
    log:
        L.log("bundle", "{experiment}_{task}"),
    benchmark:
        L.benchmark("bundle", "{experiment}_{task}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/bundle.py"
