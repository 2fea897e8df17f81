# Baselines: classical radiomics (scikit-learn), MRNet and ELNet on the fingerprint's folds and threshold rule.
# Settings (radpersona.settings) already refused a baseline named like an experiment and a features_from
# that is not an experiment.

from radpersona.settings import FingerprintColumnsSettings
from radpersona.vocabulary import CNN_BASELINES

BASELINES = list(S.baselines.run)
# CNN baselines read every case's volumes (baselines.cnn.volumes) ...
CNN_BASELINE_INPUTS = {
    "cohort": L.cohort(),
    "volumes": [L.volume(S.baselines.cnn.volumes, c, v) for c in CASES for v in SOURCE_VIEWS],
}
# ... classical ones the wide table of baselines.classical.features_from, and only its column selection
# (other fingerprint settings must not rerun the baselines)
CLASSICAL_FROM = S.experiments.get(S.baselines.classical.features_from) if S.baselines.classical_run else None
CLASSICAL_BASELINE_INPUTS = (
    {"cohort": L.cohort(), "table": L.wide(CLASSICAL_FROM.reg, CLASSICAL_FROM.grid)} if CLASSICAL_FROM else {}
)
CLASSICAL_COLUMNS = FingerprintColumnsSettings.of(CLASSICAL_FROM.fingerprint).to_config() if CLASSICAL_FROM else None


rule train_baseline:
    input:
        unpack(lambda wc: CNN_BASELINE_INPUTS if wc.baseline in CNN_BASELINES else CLASSICAL_BASELINE_INPUTS),
    output:
        L.predictions("{baseline}", "{task}"),
    wildcard_constraints:
        baseline="|".join(BASELINES) if BASELINES else "(?!)",
    params:
        results=results_folder,
        baselines=S.baselines.to_config(),
        inner_validation=S.fingerprint.inner_validation,
        columns=lambda wc: None if wc.baseline in CNN_BASELINES else CLASSICAL_COLUMNS,
    threads: THREADS
    resources:
        gpu=lambda wc: int(wc.baseline in CNN_BASELINES and S.baselines.cnn.device == "cuda"),
    log:
        L.log("train_baseline", "{baseline}_{task}"),
    benchmark:
        L.benchmark("train_baseline", "{baseline}_{task}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_baseline.py"
