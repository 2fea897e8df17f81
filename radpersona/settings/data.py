"""Settings of the data stages: source, synthetic cohort, preprocessing, registration."""

from __future__ import annotations

from dataclasses import dataclass, field

from radpersona.settings.base import Section, fail
from radpersona.vocabulary import TASKS


@dataclass(frozen=True)
class KneeMRISettings(Section):
    """``source.kneemri``: how the Rijeka KneeMRI dataset is read."""

    KEY = "source.kneemri"
    acl_positive: str = "any_tear"
    """``any_tear``: acl = aclDiagnosis > 0; ``complete_tear``: acl = aclDiagnosis == 2."""
    valid_fraction: float = 0.12
    """Patients held out as valid (the dataset has no official split)."""
    seed: int = 5
    """Seed of the patient-level train/valid split."""


@dataclass(frozen=True)
class SourceSettings(Section):
    """``source``: where the cohort comes from."""

    KEY = "source"
    kind: str
    root: str | None = None
    manifest: str | None = None
    exclude: tuple[str, ...] = ()
    kneemri: KneeMRISettings = field(default_factory=KneeMRISettings)

    def __post_init__(self) -> None:
        if self.kind in ("mrnet", "kneemri") and not self.root:
            raise fail("source.root", f"a dataset folder is required for source.kind {self.kind!r}")
        if self.kind == "manifest" and not self.manifest:
            raise fail("source.manifest", "a CSV path is required for source.kind 'manifest'")
        if self.kind == "synthetic" and not self.root:
            raise fail("source.root", "the synthetic source needs a folder to write its MRNet layout to")


@dataclass(frozen=True)
class PrevalenceSettings(Section):
    """``synthetic.prevalence``: label prevalences of the synthetic cohort."""

    KEY = "synthetic.prevalence"
    abn: float
    acl: float
    men: float

    @property
    def tear(self) -> float:
        """P(acl or men) with independent tears: every tear is an abnormality."""
        return 1.0 - (1.0 - self.acl) * (1.0 - self.men)

    def __post_init__(self) -> None:
        if self.abn < self.tear - 1e-12:
            raise fail(
                "synthetic.prevalence.abn",
                f"{self.abn} must be at least P(acl or men) = {self.tear:.4f}, because every tear is an abnormality",
            )

    def as_dict(self) -> dict[str, float]:
        """``{task: prevalence}`` in :data:`radpersona.vocabulary.TASKS` order."""
        return {task: float(getattr(self, task)) for task in TASKS}


@dataclass(frozen=True)
class SyntheticSettings(Section):
    """``synthetic``: the generated knee cohort (MRNet layout, with ground truth)."""

    KEY = "synthetic"
    n_train: int
    n_valid: int
    seed: int
    difficulty: float
    matrix: int
    slices: tuple[int, int]
    prevalence: PrevalenceSettings

    MAX_CASES = 10000  # 4-digit case ids

    def __post_init__(self) -> None:
        lo, hi = self.slices
        if lo > hi:
            raise fail("synthetic.slices", f"minimum {lo} is larger than maximum {hi}")
        if self.n_train + self.n_valid > self.MAX_CASES:
            raise fail("synthetic.n_train", f"n_train + n_valid = {self.n_train + self.n_valid} exceeds 4-digit ids")


@dataclass(frozen=True)
class PreprocessSettings(Section):
    """``preprocess``: resize every view to ``shape`` and normalise intensities per case and view."""

    KEY = "preprocess"
    shape: tuple[int, int, int]
    interpolation: str
    normalisation: str
    percentiles: tuple[float, float]
    crop: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.crop <= 1.0:
            raise fail(
                "preprocess.crop",
                f"must be in (0, 1] (the kept fraction of each slice's rows and columns), not {self.crop}",
            )
        lo, hi = self.percentiles
        if lo >= hi:
            raise fail("preprocess.percentiles", f"lower {lo} must be below upper {hi}")


@dataclass(frozen=True)
class RegistrationSettings(Section):
    """``registration``: NiftyReg reg_aladin of every view to a per-view reference."""

    KEY = "registration"
    variants: tuple[str, ...]
    reference: str
    reference_case: str | None
    template_cases: int
    template_iterations: int
    seed: int
    rigid_only: bool
    levels: int
    levels_to_perform: int
    max_iterations: int
    ncc_margin: float
    on_failure: str

    def __post_init__(self) -> None:
        if self.levels_to_perform > self.levels:
            raise fail(
                "registration.levels_to_perform",
                f"{self.levels_to_perform} exceeds registration.levels {self.levels}",
            )
