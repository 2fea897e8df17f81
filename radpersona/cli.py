"""The ``radpersona`` command line.

Subcommands:

- ``radpersona check-config [FILES...]``: parse config.yaml plus layered presets exactly as the workflow
  does (schema, every cross-field rule, and the rules that need the source's views and case list),
  print the merged settings' hash, exit non-zero naming the bad key.
- ``radpersona version``: versions of radpersona and its main dependencies, and the reg_aladin in use.
- ``radpersona explain --case ID --task acl [--experiment proposed] [--results DIR] [--out FILE]
  [--config FILES...]``: write the case's explanation page (HTML) from an existing results folder.
- ``radpersona diagnose --bundle DIR --sagittal FILE [--coronal FILE] [--axial FILE] --out DIR [--case ID]``:
  explain one new exam (NIfTI files or DICOM series folders) with a model bundle (``results/bundle/...``):
  prediction, fingerprint (Parquet), registration QC and the explanation page in a new folder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import RadpersonaError


def _check_config(args: argparse.Namespace) -> int:
    """Parse the configuration as the workflow does, with the rules that need the cohort's case list."""
    from .ingest import list_cases, source_views
    from .settings import Settings, read_config, settings_hash

    files = args.files or [Path("config.yaml")]
    config = read_config(*files)
    settings = Settings.parse(config)
    checked = "schema and cross-field rules"
    if not args.no_cohort:
        settings.check_views(source_views(settings.source))
        cases = list_cases(settings.source, settings.synthetic)
        settings.check_cohort(cases["case"].tolist(), cases.loc[cases["split"] == "train", "case"].tolist())
        checked += f"; source views and the cohort's {len(cases)} cases"
    print(f"configuration OK ({', '.join(map(str, files))}; {checked}); settings hash {settings_hash(config)}")
    print(f"source: {settings.source.kind}; experiments: {', '.join(settings.experiments)}")
    return 0


def _version(args: argparse.Namespace) -> int:
    import importlib.metadata as md

    print(f"radpersona {__version__}")
    for name in ("torch", "monai", "pyradiomics-bhklab", "SimpleITK", "snakemake", "pandas", "scikit-learn"):
        try:
            print(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            print(f"{name} not installed")
    try:
        from .registration import find_niftyreg_tool, niftyreg_version

        print(f"reg_aladin {niftyreg_version()} ({find_niftyreg_tool()})")
    except RadpersonaError as exc:
        print(f"reg_aladin: {exc}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain_case
    from .explain.page import ExplainSettings
    from .layout import Layout
    from .settings import ConfigError, load_settings

    config = load_settings(*(args.config or [Path("config.yaml")]))
    if args.experiment not in config.experiments:
        raise ConfigError(f"--experiment {args.experiment!r}: no such experiment; known: {sorted(config.experiments)}")
    exp = config.experiments[args.experiment]
    layout = Layout(str(args.results if args.results is not None else config.results))
    out = args.out or Path(layout.explanation(args.experiment, args.task, args.case))
    settings = ExplainSettings.from_settings(
        config.report, reg=exp.reg, grid=exp.grid, box=config.persona.box, crop=config.preprocess.crop
    )
    record = explain_case(layout, args.case, args.task, args.experiment, settings, out)
    print(
        f"case {record['case']} {record['task']}: logit {record['logit']:+.4f}, probability {record['prob']:.4f}, "
        f"{record['n_used']} features, {record['highlighted']} patches -> {out}"
    )
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from .progress import configure_logging
    from .stages.diagnose import diagnose
    from .vocabulary import VIEWS

    configure_logging()
    exam = {view: getattr(args, view) for view in VIEWS if getattr(args, view) is not None}
    record = diagnose(bundle=args.bundle, exam=exam, out=args.out, case=args.case, threads=args.threads)
    print(
        f"exam {record['case']} {record['experiment']} {record['task']}: probability {record['prob']:.4f}, "
        f"threshold {record['threshold']:.4f} -> {'positive' if record['pred'] else 'negative'}; "
        f"{record['n_used']} features, {record['highlighted']} patches; {record['seconds']:.1f} s -> {args.out}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands register themselves here)."""
    parser = argparse.ArgumentParser(prog="radpersona", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-config", help="validate configuration files (later files override earlier)")
    check.add_argument("files", nargs="*", type=Path)
    check.add_argument(
        "--no-cohort", action="store_true", help="skip the rules that read the source's case list (views, cases)"
    )
    check.set_defaults(func=_check_config)
    version = sub.add_parser("version", help="print versions of radpersona, its dependencies and reg_aladin")
    version.set_defaults(func=_version)
    explain = sub.add_parser("explain", help="write a case's explanation page (fingerprint, persona, residual) as HTML")
    explain.add_argument("--case", required=True, help="case id, e.g. 0050")
    explain.add_argument("--task", required=True, choices=["abn", "acl", "men"])
    explain.add_argument("--experiment", default="proposed", help="experiment name from the config (default: proposed)")
    explain.add_argument("--results", type=Path, default=None, help="results folder (default: the config's `results`)")
    explain.add_argument(
        "--out", type=Path, default=None, help="output HTML (default: RESULTS/explain/{experiment}_{task}/{case}.html)"
    )
    explain.add_argument(
        "--config", type=Path, nargs="+", default=None, help="config files, later ones override (default: config.yaml)"
    )
    explain.set_defaults(func=_explain)
    diag = sub.add_parser("diagnose", help="explain one new exam with a model bundle (results/bundle/...)")
    diag.add_argument("--bundle", type=Path, required=True, help="bundle folder, e.g. results/bundle/proposed_acl")
    for view in ("sagittal", "coronal", "axial"):
        diag.add_argument(f"--{view}", type=Path, default=None, help=f"{view} view: NIfTI file or DICOM series folder")
    diag.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    diag.add_argument("--case", default="exam", help="the exam's id: names its files and seeds its persona")
    diag.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: the bundle's resources.torch_threads)"
    )
    diag.set_defaults(func=_diagnose)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``radpersona`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RadpersonaError as exc:
        print(f"radpersona: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
