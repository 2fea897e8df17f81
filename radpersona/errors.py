"""Exceptions that name the case, view, file and the bad value."""

from __future__ import annotations

from pathlib import Path


class RadpersonaError(Exception):
    """Base class for errors a user can act on (bad input, bad config, missing tool)."""


class InputDataError(RadpersonaError):
    """Bad input data; the message names case, view, file and the offending value."""

    def __init__(
        self,
        message: str,
        *,
        case: str | None = None,
        view: str | None = None,
        path: str | Path | None = None,
        value: object = None,
    ) -> None:
        where = []
        if case is not None:
            where.append(f"case {case!r}")
        if view is not None:
            where.append(f"view {view!r}")
        if path is not None:
            where.append(f"file {str(path)!r}")
        text = message
        if where:
            text = f"{', '.join(where)}: {message}"
        if value is not None:
            text = f"{text} (got {value!r})"
        super().__init__(text)
        self.case, self.view, self.path, self.value = case, view, path, value


class ConfigError(RadpersonaError):
    """Invalid configuration; the message names the key."""


class ToolNotFoundError(RadpersonaError):
    """An external tool (e.g. reg_aladin) is not available."""
