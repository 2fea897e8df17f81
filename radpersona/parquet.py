"""Parquet tables written atomically, with provenance (settings, hashes, seeds) in the schema metadata."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from radpersona.atomic import atomic_output


def write_parquet(frame: pd.DataFrame, path: str | Path, *, metadata: Mapping[str, Any] | None = None) -> None:
    """Write a DataFrame to Parquet atomically, with ``radpersona`` JSON metadata in the schema."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata:
        meta = dict(table.schema.metadata or {})
        meta[b"radpersona"] = json.dumps(metadata, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(meta)
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet_metadata(path: str | Path) -> dict[str, Any]:
    """Return the ``radpersona`` metadata stored by :func:`write_parquet` (empty if none)."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"radpersona")
    return json.loads(raw) if raw else {}
