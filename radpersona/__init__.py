"""radpersona: explainable knee-MRI diagnosis with healthy personas and radiomic fingerprints.

Layers (docs/architecture.md): config -> :mod:`radpersona.settings` (typed, validated) ->
:mod:`radpersona.layout` (every path under results/) -> Snakemake rules (``rules/``) ->
:mod:`radpersona.stages` (one function per rule) -> the package's topic modules. Names shared by
all of them live in :mod:`radpersona.vocabulary`.
"""

from radpersona.vocabulary import TASKS, VIEWS

__version__ = "0.1.0"

__all__ = ["TASKS", "VIEWS", "__version__"]
