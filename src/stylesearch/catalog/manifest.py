"""Catalog manifests: read, validate and account for every row (ARCHITECTURE.md "Catalog manifest").

A manifest lists one product per row with the columns ``id``, ``image``, ``title`` (required) and
``description``, ``extra_images``, ``attributes`` (optional); other columns are ignored. Three
formats carry the same columns:

* JSON Lines (``.jsonl`` / ``.ndjson``): one object per line; blank lines are skipped and are not
  rows. An integer ``id`` is accepted and converted to a string (``7`` -> ``"7"``).
* CSV (``.csv``, UTF-8, header row): list columns hold a JSON array (``["a.png", "b.png"]``) or
  a ``|``-separated string (``a.png|b.png``); an empty cell is an empty list.
* Parquet (``.parquet`` / ``.pq``): string columns, list columns as ``list<string>`` (or strings
  as in CSV).

Reading the files is :mod:`stylesearch.catalog.formats`; this module checks the rows.

Values are stripped of surrounding whitespace; a whitespace-only required value is "empty".
Image paths are relative to the manifest's folder unless absolute. A path that resolves (``..``
and symlinks followed) outside the manifest's folder is rejected unless it lies under one of the
``image_roots`` the caller allows (``--images-root`` on the command line).

Every row ends up either in :attr:`Catalog.items` or in :attr:`Catalog.rejected` with one
user-readable reason, so ``rows_in == len(items) + len(rejected)`` always holds. Duplicate ids:
the first row with that id that passes every other check is kept; later ones are rejected as
``duplicate id 'x' (first seen on row N)``. Ids are compared in Unicode NFC form, so two
spellings of one id are duplicates. An id is at most 512 characters without control, format or
separator characters; an item's text is at most 100,000 characters.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from stylesearch.catalog.formats import (
    SUPPORTED_SUFFIXES,
    CatalogError,
    iter_manifest_rows,
    type_name,
)
from stylesearch.catalog.images import DEFAULT_MAX_PIXELS, ImageError, check_image

__all__ = [
    "Catalog",
    "CatalogError",
    "CatalogItem",
    "RejectedRow",
    "SUPPORTED_SUFFIXES",
    "iter_manifest_rows",
    "load_catalog",
    "reason_kind",
]

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_CHECK_CHUNK = 4096
#: Longest accepted item id, in characters (the HTTP API looks items up by id in the URL).
MAX_ID_CHARS: int = 512
#: Longest accepted text of one item (title, description and attributes together), in characters:
#: far above any product text, far below what the text pipeline (spaCy) refuses.
MAX_TEXT_CHARS: int = 100_000
#: Unicode categories an id may not contain: control (NUL, newline, ...), format (right-to-left
#: overrides, zero-width characters), line and paragraph separators, unassigned, surrogates.
_BAD_ID_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Cs"})


@dataclass(frozen=True)
class CatalogItem:
    """One accepted catalog row.

    Attributes:
        id: unique, non-empty item id (surrounding whitespace stripped).
        image: absolute path of the main product image.
        title: product title (non-empty).
        description: optional longer text ("" when absent).
        extra_images: absolute paths of other views of the same product.
        attributes: optional structured words (e.g. ``("red", "cotton")``).
    """

    id: str
    image: Path
    title: str
    description: str = ""
    extra_images: tuple[Path, ...] = ()
    attributes: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """Training text: ``"<title>. <description>. <attr1>, <attr2>"`` (empty parts skipped)."""
        text = ""
        for part in (self.title, self.description, ", ".join(self.attributes)):
            part = part.strip()
            if not part:
                continue
            if text:
                text += " " if text[-1] in ".!?;:" else ". "
            text += part
        return text

    @property
    def all_images(self) -> tuple[Path, ...]:
        """``(image, *extra_images)``: every view of the item, main image first."""
        return (self.image, *self.extra_images)


@dataclass(frozen=True)
class RejectedRow:
    """A manifest row that was not accepted.

    Attributes:
        row: 1-based row number: the line number for JSON Lines (blank lines are not rows but
            still count as lines, so it matches an editor), the data row (after the header) for
            CSV, the row index + 1 for Parquet.
        id: the row's id when one could be read, else ``None``.
        reason: one user-readable reason naming the field or path at fault.
    """

    row: int
    id: str | None
    reason: str


def reason_kind(reason: str) -> str:
    """Group a rejection reason by kind, dropping ids, paths and details.

    ``"image: image not found: /a/b.png"`` -> ``"image: image not found"``;
    ``"duplicate id 'x' (first seen on row 3)"`` -> ``"duplicate id"``;
    ``"missing field 'title'"`` stays as it is.
    """
    match = re.match(r"^(image|extra image \d+): (.*)$", reason)
    if match:
        prefix = "image" if match.group(1) == "image" else "extra image"
        return f"{prefix}: {reason_kind(match.group(2))}"
    if reason.startswith("duplicate id"):
        return "duplicate id"
    kind = reason.split(": ", 1)[0]
    return re.sub(r" \([^()]*\)$", "", kind)


@dataclass
class Catalog:
    """A loaded manifest: accepted items in file order and every rejected row with its reason.

    Invariant: ``rows_in == len(items) + len(rejected)``.
    """

    path: Path
    items: list[CatalogItem]
    rejected: list[RejectedRow]
    rows_in: int
    _index: dict[str, CatalogItem] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _indexed: tuple[int, int] = field(default=(0, -1), init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[CatalogItem]:
        return iter(self.items)

    def get(self, item_id: str) -> CatalogItem | None:
        """The item with this id, or ``None`` (a dict built on first use, rebuilt if ``items``
        is replaced or changes length)."""
        key = (id(self.items), len(self.items))
        if self._indexed != key:
            self._index = {item.id: item for item in self.items}
            self._indexed = key
        return self._index.get(item_id)

    def write_rejects(self, path: str | os.PathLike[str]) -> None:
        """Write one JSON object ``{"row", "id", "reason"}`` per rejected row (JSON Lines)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            for rej in self.rejected:
                record = {"row": rej.row, "id": rej.id, "reason": rej.reason}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def summary(self) -> str:
        """``"<n> rows: <a> accepted, <r> rejected"`` then one line per reason kind, most
        frequent first, e.g. ``"  3  image: image not found"``."""
        lines = [f"{self.rows_in} rows: {len(self.items)} accepted, {len(self.rejected)} rejected"]
        counts = Counter(reason_kind(rej.reason) for rej in self.rejected)
        width = len(str(max(counts.values(), default=0)))
        for kind, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {count:>{width}}  {kind}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- row checks


class _RowError(Exception):
    """Internal: a row fails a field check; the message is the rejection reason."""


def _required_str(raw: dict[str, Any], name: str) -> str:
    if name not in raw or raw[name] is None:
        raise _RowError(f"missing field {name!r}")
    value = raw[name]
    if name == "id" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _RowError(f"wrong type for field {name!r}: expected a string, got {type_name(value)}")
    value = value.strip()
    if not value:
        raise _RowError(f"empty field {name!r}")
    return value


def _optional_str(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _RowError(f"wrong type for field {name!r}: expected a string, got {type_name(value)}")
    return value.strip()


def _string_list(raw: dict[str, Any], name: str) -> tuple[str, ...]:
    """A list field: a list of strings, a JSON array string or a ``|``-separated string."""
    value = raw.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _RowError(f"invalid JSON array in field {name!r}: {exc.msg}") from None
        else:
            value = text.split("|")
    if not isinstance(value, (list, tuple)):
        raise _RowError(
            f"wrong type for field {name!r}: expected a list of strings, got {type_name(value)}"
        )
    out = []
    for position, element in enumerate(value, start=1):
        if not isinstance(element, str):
            raise _RowError(
                f"wrong type for field {name!r}: element {position} is {type_name(element)}, "
                "expected a string"
            )
        if element.strip():
            out.append(element.strip())
    return tuple(out)


def _resolve(value: str, base_dir: Path, what: str) -> Path:
    if _URL.match(value):
        raise _RowError(f"{what}: URLs are not supported, give a local file path: {value}")
    path = Path(value)
    return path if path.is_absolute() else base_dir / path


def _check_id(item_id: str) -> None:
    if len(item_id) > MAX_ID_CHARS:
        raise _RowError(f"id too long: {len(item_id)} characters (at most {MAX_ID_CHARS})")
    for position, char in enumerate(item_id, start=1):
        if unicodedata.category(char) in _BAD_ID_CATEGORIES:
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            raise _RowError(
                f"bad character in id: {name} (U+{ord(char):04X}) at position {position}; an id "
                "may not hold control, format or separator characters"
            )


def _parse_row(raw: dict[str, Any], base_dir: Path) -> CatalogItem:
    """Check the fields of one raw row and build its item (images not checked yet)."""
    item_id = _required_str(raw, "id")
    _check_id(item_id)
    image = _required_str(raw, "image")
    title = _required_str(raw, "title")
    description = _optional_str(raw, "description")
    extra = _string_list(raw, "extra_images")
    attributes = _string_list(raw, "attributes")
    length = len(title) + len(description) + sum(len(a) + 2 for a in attributes)
    if length > MAX_TEXT_CHARS:
        raise _RowError(
            f"text too long: title, description and attributes have {length} characters "
            f"(at most {MAX_TEXT_CHARS})"
        )
    return CatalogItem(
        id=item_id,
        image=_resolve(image, base_dir, "image"),
        title=title,
        description=description,
        extra_images=tuple(
            _resolve(p, base_dir, f"extra image {k}") for k, p in enumerate(extra, start=1)
        ),
        attributes=attributes,
    )


def _raw_id(raw: dict[str, Any] | str) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


# ----------------------------------------------------------------------------- image checks


def _outside(path: Path, roots: tuple[Path, ...]) -> str | None:
    """The reason to refuse ``path`` when it resolves outside every folder of ``roots``
    (resolved folders; the first is the manifest's), else ``None``."""
    real = path.resolve()  # follows "..", and every symlink on the way
    if any(real.is_relative_to(root) for root in roots):
        return None
    where = f"{path} (resolves to {real})" if real != path else str(path)
    allowed = ", ".join(str(root) for root in roots)
    return (
        f"image outside the catalog folder: {where} is not under {allowed}; "
        "allow its folder with --images-root"
    )


def _image_checker(
    validate: bool, max_pixels: int, roots: tuple[Path, ...]
) -> Callable[[Path], str | None]:
    """A function path -> ``None`` if usable, else the reason: outside ``roots``, or the
    :class:`ImageError` reason."""

    def check(path: Path) -> str | None:
        try:  # before opening anything: a refused path is never read
            outside = _outside(path, roots)
        except (OSError, RuntimeError) as exc:  # a symlink loop
            return f"cannot read image: {path} ({type(exc).__name__}: {exc})"
        if outside is not None:
            return outside
        if not validate:
            if path.is_file():
                return None
            return f"image not found: {path}"
        try:
            check_image(path, max_pixels=max_pixels)
        except ImageError as exc:
            return str(exc)
        except Exception as exc:  # never let one odd file abort a whole catalog
            return f"cannot read image: {path} ({type(exc).__name__}: {exc})"
        return None

    return check


def _check_paths(
    paths: list[Path], check: Callable[[Path], str | None], workers: int, progress: bool
) -> dict[Path, str | None]:
    from tqdm.auto import tqdm

    results: dict[Path, str | None] = {}
    bar = tqdm(total=len(paths), desc="checking images", unit="img", disable=not progress)
    with bar:
        if workers <= 1:
            for path in paths:
                results[path] = check(path)
                bar.update(1)
            return results
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check-image") as pool:
            it = iter(paths)
            while chunk := list(islice(it, _CHECK_CHUNK)):
                for path, reason in zip(chunk, pool.map(check, chunk), strict=True):
                    results[path] = reason
                    bar.update(1)
    return results


def load_catalog(
    path: str | os.PathLike[str],
    *,
    validate_images: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = False,
    workers: int = 4,
    image_roots: Iterable[str | os.PathLike[str]] = (),
) -> Catalog:
    """Read a manifest, check every row and image, and account for every row.

    Args:
        path: a ``.jsonl`` / ``.ndjson``, ``.csv`` or ``.parquet`` manifest.
        validate_images: decode every image (see :func:`check_image`); when ``False`` only
            check that the files exist. Paths outside the allowed folders are refused either way.
        max_pixels: refuse images with more pixels (width * height) than this.
        progress: show a tqdm progress bar (stderr) while checking images.
        workers: threads checking images in parallel (``<= 1``: in this thread). Each distinct
            path is checked once, even if several rows share it.
        image_roots: folders besides the manifest's own that images may lie in. An image
            path is resolved (``..`` and symlinks followed) and must lie under the manifest's
            folder or one of these; other rows are rejected as ``image outside the catalog
            folder``.

    Returns:
        A :class:`Catalog` with accepted items in file order and rejected rows with reasons.

    Raises:
        CatalogError: a whole-file problem (see :func:`iter_manifest_rows`).
    """
    path = Path(path).absolute()
    base_dir = path.parent
    roots = tuple(dict.fromkeys(Path(r).resolve() for r in (base_dir, *image_roots)))
    parsed = _parse_rows(path, base_dir)
    unique = list(
        dict.fromkeys(
            image
            for _, entry in parsed
            if isinstance(entry, CatalogItem)
            for image in entry.all_images
        )
    )
    reasons = _check_paths(
        unique, _image_checker(validate_images, max_pixels, roots), workers, progress
    )

    items: list[CatalogItem] = []
    rejected: list[RejectedRow] = []
    first_row: dict[str, tuple[int, str]] = {}  # NFC id -> (row, id as given)
    for row_number, entry in parsed:
        if isinstance(entry, RejectedRow):
            rejected.append(entry)
            continue
        reason = _image_reason(entry, reasons)
        key = unicodedata.normalize("NFC", entry.id)
        if reason is None and key in first_row:
            first, first_id = first_row[key]
            same = "" if first_id == entry.id else f", equal to {first_id!r} once NFC-normalised"
            reason = f"duplicate id {entry.id!r} (first seen on row {first}{same})"
        if reason is not None:
            rejected.append(RejectedRow(row_number, entry.id, reason))
            continue
        first_row[key] = (row_number, entry.id)
        items.append(entry)
    return Catalog(path=path, items=items, rejected=rejected, rows_in=len(parsed))


def _parse_rows(path: Path, base_dir: Path) -> list[tuple[int, CatalogItem | RejectedRow]]:
    """Every row of the manifest, in file order: its item, or why it is rejected."""
    parsed: list[tuple[int, CatalogItem | RejectedRow]] = []
    for row_number, raw in iter_manifest_rows(path):
        if isinstance(raw, str):
            parsed.append((row_number, RejectedRow(row_number, None, raw)))
            continue
        try:
            parsed.append((row_number, _parse_row(raw, base_dir)))
        except _RowError as exc:
            parsed.append((row_number, RejectedRow(row_number, _raw_id(raw), str(exc))))
    return parsed


def _image_reason(entry: CatalogItem, reasons: Mapping[Path, str | None]) -> str | None:
    """Why an item's main or extra image is refused (the first refused), ``None`` if none."""
    reason = reasons[entry.image]
    if reason is not None:
        return f"image: {reason}"
    for k, extra in enumerate(entry.extra_images, start=1):
        if reasons[extra] is not None:
            return f"extra image {k}: {reasons[extra]}"
    return None
