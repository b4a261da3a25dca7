"""Manifest files: the three formats a catalog manifest may have, read into raw rows.

JSON Lines, CSV and Parquet carry the same columns (:mod:`stylesearch.catalog.manifest`
validates them). :func:`iter_manifest_rows` yields each row as a dict, or the reason it could
not be parsed at all; whole-file problems raise :class:`CatalogError`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stylesearch.errors import StylesearchError

__all__ = [
    "LIST_FIELDS",
    "REQUIRED_FIELDS",
    "SUPPORTED_SUFFIXES",
    "CatalogError",
    "iter_manifest_rows",
    "type_name",
]

REQUIRED_FIELDS: tuple[str, ...] = ("id", "image", "title")
LIST_FIELDS: tuple[str, ...] = ("extra_images", "attributes")
SUPPORTED_SUFFIXES: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def type_name(value: Any) -> str:
    """A JSON-ish name of ``value``'s type for messages (``object``, ``array``, ``null``...)."""
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


class CatalogError(StylesearchError, ValueError):
    """A problem with the manifest as a whole (not found, unsupported format, missing columns,
    unreadable file); per-row problems are :class:`RejectedRow` entries instead."""


def _manifest_format(path: Path) -> str:
    if not path.exists():
        raise CatalogError(f"manifest not found: {path}")
    if path.is_dir():
        raise CatalogError(f"manifest is a directory, expected a file: {path}")
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise CatalogError(
            f"unsupported manifest extension {path.suffix!r}: {path} "
            "(use .jsonl / .ndjson (JSON Lines), .csv or .parquet)"
        )
    return kind


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield lineno, f"invalid UTF-8 (byte {exc.start + 1} of the line)"
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"
                continue
            if not isinstance(value, dict):
                yield lineno, f"row is not a JSON object (got {type_name(value)})"
                continue
            yield lineno, value


def _iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise CatalogError(f"CSV manifest is empty (no header row): {path}")
            columns = [name.strip() for name in header]
            missing = [name for name in REQUIRED_FIELDS if name not in columns]
            if missing:
                raise CatalogError(
                    f"CSV manifest {path} is missing required column(s) {', '.join(missing)} "
                    f"(header: {', '.join(columns)})"
                )
            row_number = 0
            for cells in reader:
                if not cells:  # csv yields [] for a completely empty line
                    continue
                row_number += 1
                if len(cells) > len(columns):
                    yield (
                        row_number,
                        f"row has {len(cells)} fields but the header has {len(columns)} columns",
                    )
                    continue
                yield row_number, dict(zip(columns, cells, strict=False))
    except UnicodeDecodeError as exc:
        raise CatalogError(f"CSV manifest is not valid UTF-8: {path} ({exc.reason})") from None
    except csv.Error as exc:
        raise CatalogError(f"cannot parse CSV manifest {path}: {exc}") from None


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise CatalogError(f"cannot read Parquet manifest {path}: {exc}") from None
    names = parquet.schema_arrow.names
    missing = [name for name in REQUIRED_FIELDS if name not in names]
    if missing:
        raise CatalogError(
            f"Parquet manifest {path} is missing required column(s) {', '.join(missing)} "
            f"(columns: {', '.join(names)})"
        )
    wanted = [name for name in (*REQUIRED_FIELDS, "description", *LIST_FIELDS) if name in names]
    row_number = 0
    try:
        for batch in parquet.iter_batches(batch_size=4096, columns=wanted):
            for record in batch.to_pylist():
                row_number += 1
                yield row_number, record
    except Exception as exc:
        raise CatalogError(f"cannot read Parquet manifest {path}: {exc}") from None


def iter_manifest_rows(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Yield ``(row_number, raw_row)`` for every row of a manifest, in file order.

    ``raw_row`` is the row as a dict of column -> value (not yet validated), or a ``str``
    giving the reason the row could not be parsed at all (invalid JSON, not an object, too
    many CSV fields). Row numbers are 1-based (see :class:`RejectedRow`).

    Raises:
        CatalogError: the file is missing, has an unsupported extension, lacks required CSV /
            Parquet columns, or cannot be read.
    """
    path = Path(path)
    kind = _manifest_format(path)
    if kind == "jsonl":
        return _iter_jsonl(path)
    if kind == "csv":
        return _iter_csv(path)
    return _iter_parquet(path)
