"""Stage entry points: one function per Snakemake rule, one module per ``rules/*.smk`` file.

Each function takes plain paths (from :class:`radpersona.layout.Layout`) and settings objects
(:mod:`radpersona.settings`), so it can be called and tested without Snakemake;
:func:`radpersona.stages.snakemake.run_rule` adapts a rule's ``snakemake`` object to it.
"""

from __future__ import annotations


def torch_threads(n: int) -> None:
    """Limit torch to ``n`` CPU threads (a rule's ``threads:``)."""
    import torch

    torch.set_num_threads(max(1, int(n)))
