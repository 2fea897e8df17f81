"""Progress lines with an ETA for long steps (training, sampling, extraction).

Snakemake redirects a rule's stderr to its log file, so progress goes to the ``logging`` logger
``radpersona`` (stderr); a user follows it with ``tail -f results/logs/<rule>/...``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

logger = logging.getLogger("radpersona")


def _fmt_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


@dataclass
class Progress:
    """Report ``done/total``, rate and ETA at most every ``every_seconds`` (and at the end).

    Example::

        bar = Progress("ddpm training", total=steps)
        for step in range(steps):
            ...
            bar.update(1, loss=f"{loss:.4f}")
    """

    label: str
    total: int
    every_seconds: float = 5.0
    unit: str = "it"
    done: int = 0
    _start: float = field(default_factory=time.perf_counter)
    _last: float = field(default=-1e9)

    def update(self, n: int = 1, **extra: object) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self._last >= self.every_seconds or self.done >= self.total:
            self._last = now
            elapsed = now - self._start
            rate = self.done / elapsed if elapsed > 0 else float("nan")
            eta = (self.total - self.done) / rate if rate and rate > 0 else float("nan")
            tail = " ".join(f"{k}={v}" for k, v in extra.items())
            logger.info(
                "%s: %d/%d %s (%.0f%%), %.2f %s/s, elapsed %s, ETA %s %s",
                self.label,
                self.done,
                self.total,
                self.unit,
                100.0 * self.done / max(self.total, 1),
                rate,
                self.unit,
                _fmt_seconds(elapsed),
                _fmt_seconds(eta) if eta == eta else "?",
                tail,
            )


def configure_logging(level: int = logging.INFO) -> None:
    """Log ``radpersona`` messages to stderr with timestamps (idempotent)."""
    root = logging.getLogger("radpersona")
    if not any(getattr(h, "_radpersona", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler._radpersona = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
