"""radpersona: explainable knee-MRI diagnosis with healthy personas and radiomic fingerprints.

Stages (see docs/architecture.md): ingest -> preprocess -> register -> persona -> features ->
fingerprint -> evaluate. Every stage is a plain, typed function in this package; the Snakemake
rules in ``rules/`` call them through thin scripts in ``workflow_scripts/``.
"""

__version__ = "0.1.0"

VIEWS: tuple[str, ...] = ("sagittal", "coronal", "axial")
TASKS: tuple[str, ...] = ("abn", "acl", "men")
