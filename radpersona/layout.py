"""Every path under ``results/``, named once.

The Snakemake rules declare their inputs and outputs with these methods, the stage functions open
files with them, and nothing derives a folder from another file's path. Arguments may be values
(``"0007"``) or Snakemake wildcard patterns (``"{case}"``): methods only format strings. Torch-free.

``docs/architecture.md`` lists the same files with what each holds.
"""

from __future__ import annotations

from dataclasses import dataclass

# ``{reg}`` branches read these volume folders: registered, or the preprocessed ones for noreg
_WORKING_FOLDER = {"reg": "reg", "noreg": "pre"}


@dataclass(frozen=True)
class Layout:
    """Paths of one results folder (``config.yaml``: ``results``)."""

    root: str = "results"

    def _p(self, *parts: str) -> str:
        return "/".join([str(self.root).rstrip("/"), *parts])

    # ------------------------------------------------------------------ ingest
    def cohort(self) -> str:
        """The cohort table: one row per case (labels, split, fold, raw paths)."""
        return self._p("cohort.parquet")

    def ingest_record(self, case: str) -> str:
        """One case's cohort record, written by ``ingest_case``."""
        return self._p("ingest", f"{case}.parquet")

    def synthetic_truth_dir(self) -> str:
        """Folder of the synthetic cohort's truth (healthy counterparts, lesion masks, case JSON)."""
        return self._p("synthetic", "truth")

    def truth(self, case: str, view: str, kind: str) -> str:
        """Truth array of a synthetic case: ``kind`` is ``healthy`` or ``lesion``."""
        return f"{self.synthetic_truth_dir()}/{case}_{view}_{kind}.npy"

    def truth_record(self, case: str) -> str:
        """Truth JSON of a synthetic case (labels, lesions, pose, acquisition, seed)."""
        return f"{self.synthetic_truth_dir()}/{case}.json"

    # ------------------------------------------------------------------ volumes
    def volume(self, kind: str, case: str, view: str) -> str:
        """A volume of ``kind`` (raw, pre, reg, persona_{reg}, residual_{reg})."""
        return self._p("volumes", kind, f"{case}_{view}.nii.gz")

    def volume_dir(self, kind: str) -> str:
        """The folder of the volumes of ``kind`` (recorded in the CNN baselines' metadata)."""
        return self._p("volumes", kind)

    def raw(self, case: str, view: str) -> str:
        """A view as ingested (float32 NIfTI)."""
        return self.volume("raw", case, view)

    def pre(self, case: str, view: str) -> str:
        """A view resized to ``preprocess.shape`` and normalised."""
        return self.volume("pre", case, view)

    def registered(self, case: str, view: str) -> str:
        """A preprocessed view registered to its view's reference."""
        return self.volume("reg", case, view)

    def affine(self, case: str, view: str) -> str:
        """reg_aladin's affine of a registered view."""
        return self._p("volumes", "reg", f"{case}_{view}.aff.txt")

    def working(self, reg: str, case: str, view: str) -> str:
        """The volume a ``{reg}`` branch works on: registered, or preprocessed for ``noreg``."""
        return self.volume(_WORKING_FOLDER.get(reg, reg), case, view)

    def persona(self, reg: str, case: str, view: str) -> str:
        """The healthy persona of a view in a ``{reg}`` branch."""
        return self.volume(f"persona_{reg}", case, view)

    def residual(self, reg: str, case: str, view: str) -> str:
        """Input minus persona."""
        return self.volume(f"residual_{reg}", case, view)

    def image(self, image: str, reg: str, case: str, view: str) -> str:
        """The radiomics input of an image kind (original, persona, residual) in a ``{reg}`` branch."""
        if image == "original":
            return self.working(reg, case, view)
        return self.volume(f"{image}_{reg}", case, view)

    # ------------------------------------------------------------------ registration
    def reference(self, view: str) -> str:
        """The registration reference of a view."""
        return self._p("registration", f"reference_{view}.nii.gz")

    def reference_sidecar(self, view: str) -> str:
        """How the reference was made (case or template, members, iterations)."""
        return self._p("registration", f"reference_{view}.json")

    def qc_case(self, case: str) -> str:
        """Registration QC of one case."""
        return self._p("registration", "qc", f"{case}.parquet")

    def qc(self) -> str:
        """Registration QC of every case."""
        return self._p("registration", "qc.parquet")

    # ------------------------------------------------------------------ persona
    def ddpm(self, reg: str, fold: str = "all") -> str:
        """The persona DDPM of a ``{reg}`` branch: ``all`` healthy training cases, or those outside CV fold ``fold``."""
        return self._p("models", f"ddpm_{reg}.pt" if fold == "all" else f"ddpm_{reg}_fold{fold}.pt")

    def persona_membership(self, reg: str) -> str:
        """Which DDPM made each case's persona of a ``{reg}`` branch, and whether it trained on the case."""
        return self._p("persona", f"membership_{reg}.parquet")

    def reconstruction_model(self, rconfig: str, model: str) -> str:
        """A model of the reconstruction study trained for one configuration."""
        return self._p("models", "reconstruction", f"{rconfig}_{model}.pt")

    def reconstruction_config_table(self, rconfig: str) -> str:
        """Per-case reconstruction scores of one configuration."""
        return self._p("tables", "reconstruction", f"{rconfig}.csv")

    def reconstruction_figure(self, rconfig: str) -> str:
        """Example reconstructions of one configuration."""
        return self._p("plots", f"reconstruction_{rconfig}.png")

    # ------------------------------------------------------------------ features
    def features(self, reg: str, grid: int | str, case: str) -> str:
        """Long feature table of one case."""
        return self._p("features", str(reg), f"g{grid}", f"{case}.parquet")

    def wide(self, reg: str, grid: int | str) -> str:
        """Wide feature table (one row per case)."""
        return self._p("features", str(reg), f"g{grid}", "table.parquet")

    # ------------------------------------------------------------------ fingerprint
    def fingerprint_model(self, experiment: str, task: str, fold: int | str) -> str:
        """A trained fingerprint model (fold ``all``: trained on all of train)."""
        return self._p("models", "fingerprint", f"{experiment}_{task}_fold{fold}.pt")

    def predictions(self, model: str, task: str) -> str:
        """Predictions of an experiment or a baseline."""
        return self._p("predictions", f"{model}_{task}.parquet")

    def fingerprints(self, experiment: str, task: str) -> str:
        """Per-case fingerprints of an experiment."""
        return self._p("fingerprints", f"{experiment}_{task}.parquet")

    def population(self, experiment: str, task: str) -> str:
        """Population coefficients of the model trained on all of train."""
        return self._p("fingerprints", f"{experiment}_{task}_population.parquet")

    # ------------------------------------------------------------------ tables and plots
    def table(self, name: str, ext: str = "csv") -> str:
        """A result table (``tables/{name}.{ext}``)."""
        return self._p("tables", f"{name}.{ext}")

    def localisation(self, experiment: str) -> str:
        """Top fingerprint features in lesion patches (synthetic cohorts)."""
        return self.table(f"localisation_{experiment}")

    def signal_audit(self, ext: str = "csv") -> str:
        """How much lesion signal survives each stage (synthetic cohorts; ``ext``: csv or md)."""
        return self.table("signal_audit", ext)

    def plot(self, name: str) -> str:
        """A figure (``plots/{name}.png``)."""
        return self._p("plots", f"{name}.png")

    # ------------------------------------------------------------------ report
    def explanation(self, experiment: str, task: str, case: str) -> str:
        """A patient's explanation page."""
        return self._p("explain", f"{experiment}_{task}", f"{case}.html")

    def summary_dir(self, experiment: str, task: str) -> str:
        """The folder of the population summary of fingerprints of an experiment and task."""
        return self._p("report", f"{experiment}_{task}")

    def summary(self, experiment: str, task: str, name: str) -> str:
        """A file of the population summary of fingerprints (``report/{experiment}_{task}/{name}``)."""
        return self._p("report", f"{experiment}_{task}", name)

    # ------------------------------------------------------------------ bundle
    def bundle_dir(self, experiment: str, task: str) -> str:
        """The model bundle of an experiment and task (what ``radpersona diagnose`` needs; :class:`BundleLayout`)."""
        return self._p("bundle", f"{experiment}_{task}")

    # ------------------------------------------------------------------ logs
    def log(self, rule: str, name: str = "all") -> str:
        """A rule's log."""
        return self._p("logs", rule, f"{name}.log")

    def benchmark(self, rule: str, name: str = "all") -> str:
        """A rule's benchmark (Snakemake's timing TSV)."""
        return self._p("benchmarks", rule, f"{name}.tsv")


@dataclass(frozen=True)
class BundleLayout:
    """The files of one model bundle (``results/bundle/{experiment}_{task}/``, or a copy anywhere)."""

    root: str

    def _p(self, name: str) -> str:
        return "/".join([str(self.root).rstrip("/"), name])

    def reference(self, view: str) -> str:
        """The registration reference of a view (a copy of ``Layout.reference(view)``)."""
        return self._p(f"reference_{view}.nii.gz")

    def ddpm(self) -> str:
        """The persona DDPM trained on all healthy training cases (a copy of ``Layout.ddpm(reg)``)."""
        return self._p("ddpm.pt")

    def fingerprint_model(self) -> str:
        """The fingerprint model trained on all of train (a copy of ``Layout.fingerprint_model(e, t, "all")``)."""
        return self._p("fingerprint.pt")

    def imputation(self) -> str:
        """Per feature of the fingerprint model: the training cases' mean that replaces a missing value."""
        return self._p("imputation.parquet")

    def config(self) -> str:
        """The settings the stages read, the views, the experiment's branch and grid, the threshold."""
        return self._p("config.json")

    def versions(self) -> str:
        """Versions of radpersona, its dependencies and reg_aladin that made the bundle."""
        return self._p("versions.json")

    def manifest(self) -> str:
        """SHA-256 of every other file of the bundle (written last)."""
        return self._p("manifest.json")


@dataclass(frozen=True)
class ExamLayout:
    """What ``radpersona diagnose`` writes for one exam (``--out``)."""

    root: str

    def _p(self, name: str) -> str:
        return "/".join([str(self.root).rstrip("/"), name])

    def prediction(self) -> str:
        """One row: probability, threshold, prediction (the columns of ``Layout.predictions``)."""
        return self._p("prediction.parquet")

    def fingerprint(self) -> str:
        """The exam's fingerprint (the columns of ``Layout.fingerprints``)."""
        return self._p("fingerprint.parquet")

    def qc(self) -> str:
        """Registration QC of the exam's views (the columns of ``Layout.qc``)."""
        return self._p("registration_qc.parquet")

    def explanation(self) -> str:
        """The explanation page."""
        return self._p("explanation.html")
