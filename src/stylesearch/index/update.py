"""Change an index without rebuilding it: ``index add``, ``index delete``.

* :func:`add_items` embeds only the new catalog items (with the model the index records; another
  model is refused), appends them as new rows and **extends** the backend: the faiss graph gets
  the new vectors inserted (``IndexHNSWFlat.add``), Milvus gets them inserted into its
  collection, the exact backend needs nothing. The derived files (sorted attribute lists,
  inverted metadata postings, column bounds) are recomputed from the stored arrays: no image is
  embedded twice and no graph is built again.
* :func:`delete_items` marks rows deleted (``deleted.npy`` tombstones). Search never returns
  them: every search path applies the live-row mask (:func:`~stylesearch.search.topk.
  hard_filter_mask`), so ``filter`` / ``combined`` stay exact. The other files are hard-linked
  into the new folder (nothing is copied); Milvus also deletes the rows from its collection.

(``index merge``, which writes a new index from several, is :mod:`stylesearch.index.merge`.)

Every change is written like a build: a temporary folder beside the index, swapped in only when
complete. A failure at any point leaves the previous index as it was and usable. (With Milvus a
failed ``add`` may leave rows in the collection the index does not know; they are never returned,
and the next ``add`` deletes them first.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stylesearch.folders import FolderSwap, share_file, writer_lock
from stylesearch.index.backends import BACKENDS, AddedRows, VectorBackend
from stylesearch.index.errors import IndexFormatError
from stylesearch.index.fusion import TextFusion
from stylesearch.index.store import DELETED, MANIFEST, Index, IndexWriter, write_manifest

if TYPE_CHECKING:
    import torch

__all__ = [
    "AddResult",
    "DeleteResult",
    "IndexUpdateError",
    "add_items",
    "delete_items",
    "read_ids_file",
]

#: rows copied per block when an index is rewritten
CHUNK = 65536
#: attribute columns copied per block (the matrix is Fortran-ordered: a column is contiguous)
COLUMN_CHUNK = 64


class IndexUpdateError(IndexFormatError):
    """An add / delete / merge that cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class AddResult:
    index_dir: Path
    added: int
    rejected: int
    count: int
    live: int
    embed_seconds: float
    total_seconds: float


@dataclass(frozen=True)
class DeleteResult:
    index_dir: Path
    deleted: int
    unknown: list[str] = field(default_factory=list)
    live: int = 0
    #: set when the index folder changed but the Milvus collection could not be updated
    warning: str | None = None


def _history(manifest: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry}
    return [*manifest.get("history", []), entry]


def read_items(index: Index) -> tuple[list[str], list[str], list[str]]:
    ids, titles, images = [], [], []
    with open(index.folder / "items.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            ids.append(rec["id"])
            titles.append(rec["title"])
            images.append(rec["image"])
    return ids, titles, images


def copy_rows(
    writer: IndexWriter, at: int, vectors: np.ndarray, attributes: np.ndarray, rows: np.ndarray
) -> None:
    """Copy ``rows`` of a source's vectors / attributes into the writer from row ``at`` on."""
    n = rows.shape[0]
    every = n == vectors.shape[0] and bool(np.all(rows == np.arange(n)))
    for start in range(0, n, CHUNK):
        sel = slice(start, min(n, start + CHUNK))
        block = vectors[sel] if every else vectors[rows[sel]]
        writer.vectors[at + sel.start : at + sel.stop] = block
    for w0 in range(0, attributes.shape[1], COLUMN_CHUNK):
        cols = slice(w0, min(attributes.shape[1], w0 + COLUMN_CHUNK))
        block = attributes[:, cols] if every else np.asarray(attributes[:, cols])[rows]
        writer.attributes[at : at + n, cols] = block


def _extend_backend(
    index: Index, start: int, *, new_metadata: tuple[np.ndarray, np.ndarray]
) -> Any:
    """``backend_update`` for :meth:`IndexWriter.finish`: the old backend plus rows ``start:``."""
    name = index.manifest["backend"]["name"]
    params = dict(index.manifest["backend"]["params"])
    added = AddedRows(start=start, old_folder=index.folder, new_metadata=new_metadata)

    def update(vectors: np.ndarray, folder: Path) -> VectorBackend:
        cls = BACKENDS.get(name)
        if cls is None:
            raise IndexFormatError(f"{added.old_folder}: cannot extend the {name!r} backend")
        return cls.extend(vectors, folder, params, added)

    return update


def add_items(
    index_dir: str | Path,
    catalog_path: str | Path,
    *,
    model_dir: str | Path | None = None,
    batch_size: int = 128,
    num_workers: int = 2,
    device: str | torch.device = "cpu",
    progress: bool = False,
    image_roots: Sequence[str | Path] = (),
) -> AddResult:
    """Embed the items of ``catalog_path`` and append them to the index at ``index_dir``
    (holding its writer lock throughout: a concurrent writer waits). ``image_roots``: folders
    besides the catalog's own that its images may lie in (:func:`load_catalog`).

    Raises:
        IndexUpdateError: an id of the new catalog is already a live item of the index (delete
            it first to replace it), or the catalog has no usable item.
        IndexMismatchError: ``model_dir`` is not the model the index was built with.
    """
    from stylesearch.model.device import resolve_device

    device = resolve_device(device)
    with writer_lock(index_dir):
        return _add_items(
            Path(index_dir), catalog_path, model_dir, batch_size, num_workers, device, progress,
            image_roots,
        )  # fmt: skip


def _add_items(
    index_dir: Path,
    catalog_path: str | Path,
    model_dir: str | Path | None,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    progress: bool,
    image_roots: Sequence[str | Path],
) -> AddResult:
    from stylesearch.catalog.manifest import load_catalog
    from stylesearch.model.io import load_model

    t_start = time.perf_counter()
    index = Index.load(index_dir)
    try:
        model = load_model(index.model_dir(model_dir), device=device)
        index.check_model(model)
        catalog = load_catalog(catalog_path, progress=progress, image_roots=image_roots)
        items = catalog.items
        if not items:
            raise IndexUpdateError(f"{catalog_path}: no usable item to add ({catalog.summary()})")
        ids, titles, images = read_items(index)
        _refuse_known_ids(index, index_dir, ids, items, catalog_path)
        n_old, m = index.count, len(items)
        new_vectors, new_attributes, new_offsets, new_words, embed_seconds = _embed_new_items(
            index, model, items, batch_size, num_workers, device, progress
        )
        old_offsets = np.asarray(index.meta_offsets)
        offsets = np.concatenate([old_offsets, old_offsets[-1] + new_offsets[1:]])
        words = np.concatenate([np.asarray(index.meta_words), new_words])
        deleted = np.zeros(n_old + m, dtype=bool)
        if index.deleted is not None:
            deleted[:n_old] = index.deleted
        manifest = {
            k: v
            for k, v in index.manifest.items()
            if k in ("model_fingerprint", "model_dir", "vocab_fingerprint", "look_version")
            or k in ("catalog", "shard")
            or k in ("metadata_fusion", "metadata_weight", "rejected", "embed_seconds")
            or k == "merged_from"
        }
        manifest["history"] = _history(
            index.manifest,
            {"op": "add", "catalog": str(Path(catalog_path).resolve()), "items": m,
             "rejected": len(catalog.rejected)},
        )  # fmt: skip
        with IndexWriter(
            index_dir, n=n_old + m, dim=index.dimension, vocab_size=index.vocab_size
        ) as writer:
            copy_rows(writer, 0, index.vectors, index.attributes, np.arange(n_old))
            writer.vectors[n_old:] = new_vectors
            writer.attributes[n_old:] = new_attributes
            writer.set_items(
                ids + [it.id for it in items],
                titles + [it.title for it in items],
                images + [str(it.image) for it in items],
                deleted=deleted,
            )
            writer.set_metadata(offsets, words)
            writer.finish(
                backend=index.manifest["backend"]["name"],
                backend_update=_extend_backend(index, n_old, new_metadata=(new_offsets, new_words)),
                manifest=manifest,
                progress=progress,
            )
    finally:
        index.close()
    return AddResult(
        index_dir=index_dir,
        added=m,
        rejected=len(catalog.rejected),
        count=n_old + m,
        live=n_old + m - int(deleted.sum()),
        embed_seconds=embed_seconds,
        total_seconds=time.perf_counter() - t_start,
    )


def _refuse_known_ids(
    index: Index, index_dir: Path, ids: list[str], items: Sequence[Any], catalog_path: str | Path
) -> None:
    """Raise IndexUpdateError when an item to add has the id of a live row of ``index``."""
    live = index.live_mask()
    known = {i for r, i in enumerate(ids) if live is None or live[r]}
    dup = [it.id for it in items if it.id in known]
    if dup:
        shown = ", ".join(dup[:5]) + (" ..." if len(dup) > 5 else "")
        raise IndexUpdateError(
            f"{len(dup)} item id(s) of {catalog_path} are already in the index {index_dir}: "
            f"{shown}; delete them first (`stylesearch index delete`) to replace them"
        )


def _embed_new_items(
    index: Index,
    model: Any,
    items: Sequence[Any],
    batch_size: int,
    num_workers: int,
    device: str,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """The new items' vectors (M, D) float32, attributes (M, V) float16 (fused with their
    metadata as the index's own items were), metadata CSR (offsets, word ids) and the seconds
    spent embedding their images."""
    from stylesearch.index.build import embed_items, metadata_csr

    m = len(items)
    new_vectors = np.zeros((m, index.dimension), np.float32)
    new_attributes = np.zeros((m, index.vocab_size), np.float16)
    t0 = time.perf_counter()
    embed_items(
        model,
        items,
        new_vectors,
        new_attributes,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
    )
    embed_seconds = time.perf_counter() - t0
    new_offsets, new_words = metadata_csr(model, items, progress=progress)
    # fused as the index's own items were (indexes built before any fusion have none)
    TextFusion.from_manifest(index.manifest).fuse(new_attributes, new_offsets, new_words)
    return new_vectors, new_attributes, new_offsets, new_words, embed_seconds


def read_ids_file(path: str | Path) -> list[str]:
    """Item ids, one per line (blank lines and lines starting with ``#`` are skipped; a JSON
    Lines file of objects with an ``"id"`` works too)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("{"):
                try:
                    line = str(json.loads(line)["id"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise IndexUpdateError(f'{path}:{n}: a JSON line without an "id"') from None
            out.append(line)
    return out


def delete_items(index_dir: str | Path, ids: Sequence[str]) -> DeleteResult:
    """Mark the live items ``ids`` deleted. Ids that are not live items of the index are
    returned in ``unknown`` (nothing is written when no id is known). Holds the index's writer
    lock throughout: a concurrent writer waits."""
    index_dir = Path(index_dir)
    with writer_lock(index_dir):
        return _delete_items(index_dir, ids)


def _delete_items(index_dir: Path, ids: Sequence[str]) -> DeleteResult:
    index = Index.load(index_dir)
    try:
        all_ids, _, _ = read_items(index)
        table = {}
        for row, item_id in enumerate(all_ids):
            if index.deleted is None or not index.deleted[row]:
                table[item_id] = row
        wanted = list(dict.fromkeys(ids))
        unknown = [i for i in wanted if i not in table]
        rows = np.array([table[i] for i in wanted if i in table], dtype=np.int64)
        if rows.shape[0] == 0:
            return DeleteResult(index_dir, 0, unknown, index.live_count)
        deleted = (
            np.zeros(index.count, dtype=bool) if index.deleted is None else index.deleted.copy()
        )
        deleted[rows] = True
        manifest = dict(index.manifest)
        manifest["deleted"] = int(deleted.sum())
        manifest["live"] = index.count - manifest["deleted"]
        manifest["history"] = _history(index.manifest, {"op": "delete", "items": len(rows)})
        backend = index.manifest["backend"]
    finally:
        index.close()
    with FolderSwap(index_dir) as folder:  # the lock is held already: re-entered
        for path in index_dir.iterdir():  # files are never changed in place: share them
            if path.name not in (MANIFEST, DELETED) and path.is_file():
                share_file(path, folder.tmp / path.name)
        np.save(folder.tmp / DELETED, deleted)
        write_manifest(folder.tmp, manifest)
        Index.load(folder.tmp).close()  # the new folder opens before it replaces the old one
        folder.commit()
    warning = None
    if backend["name"] == "milvus":
        # after the swap: should this fail, the rows are still filtered out locally, and the
        # next delete sends every tombstoned row again
        from stylesearch.index.backends.milvus import MilvusError, delete_rows

        try:
            delete_rows(backend["params"], np.flatnonzero(deleted))
        except MilvusError as exc:
            warning = (
                f"the items are deleted from the index folder (search never returns them), but "
                f"not yet from the Milvus collection: {exc}"
            )
    return DeleteResult(index_dir, int(rows.shape[0]), unknown, manifest["live"], warning)
