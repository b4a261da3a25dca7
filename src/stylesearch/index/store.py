"""The index folder (ARCHITECTURE.md "Index folder"): write it atomically, load it memory-mapped.

Files (N items, D dimensions, V vocabulary words)::

    manifest.json          format + version, model fingerprint (the weights' sha256) and folder,
                           vocabulary fingerprint and size, count N, dimension D, backend name +
                           params, build seconds, created time
    vectors.npy            (N, D) float32, L2-normalised f_I, memory-mapped
    attributes.npy         (N, V) float16 p_w(item), **Fortran order**: each word's column is
                           contiguous (a word's column over the catalog is one 2N-byte run)
    attributes_max.npy     (V,) float32 column maxima of p; attributes_min.npy the minima
    attr_postings_*.npy    per word, its rows with p_w >= 0.5 (at least the top 2 %, at most the
                           top 25 % of the catalog: :mod:`~stylesearch.index.postings`) sorted
                           by p_w descending (ties: lower row first): ``offsets`` (V + 1,) int64,
                           ``rows`` int32, ``values`` float16 (the same p_w, so bounds are exact)
                           and ``floor`` (V,) float32, the largest p_w of a row left out of the
                           list (0 when the list is complete). The exact soft-filter top-k reads
                           a prefix of one wanted word's list.
    items.jsonl            one {"id", "title", "image"} per row, in row order
    items_offsets.npy      (N + 1,) int64 byte offsets of the lines (titles read per result)
    metadata_offsets.npy   (N + 1,) int64 and metadata_words.npy int32: each item's metadata
                           word ids (CSR), from the catalog text through the model's pipeline
    postings_offsets.npy   (V + 1,) int64 and postings_rows.npy int32: the same, inverted
                           (word -> sorted rows), for hard filters
    hnsw.faiss             the faiss backend's graph + vectors (faiss backend only)
    coarse_*.npy           a coarse partition of the rows with per-cluster cosine cones and
                           p maxima / minima: sound score bounds for the exact soft-filter top-k
                           (:mod:`stylesearch.index.coarse`; manifest ``coarse``: clusters, count;
                           deleted rows keep their place in it, the bounds stay upper bounds)
    deleted.npy            (N,) bool tombstones of deleted rows (only when the manifest's
                           ``deleted`` count is above 0): ``stylesearch index delete`` marks
                           rows, search never returns them; ``count`` stays the number of rows,
                           ``live`` is the number of searchable items

Writing: :class:`IndexWriter` holds the folder's writer lock, fills a temporary folder beside the
target (``.NAME.tmp-XXXX``) and swaps it into place only when everything is written
(:mod:`stylesearch.folders`: one writer at a time, every file synced to disk, and a kill at any
moment leaves an index that loads). An exception at any point before the swap deletes the temporary
folder and leaves the old index as it was.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stylesearch.folders import FolderSwap, ManifestFormat, read_manifest_json, replace_files
from stylesearch.index.backends import BACKENDS, VectorBackend
from stylesearch.index.coarse import CoarseIndex, build_coarse
from stylesearch.index.errors import IndexFormatError, IndexMismatchError
from stylesearch.index.memory import mapped
from stylesearch.index.postings import (
    POSTING_MAX_FRACTION,
    POSTING_MIN_FRACTION,
    POSTING_MIN_VALUE,
    invert_csr,
    write_attribute_lists,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Index",
    "IndexFormatError",
    "IndexMismatchError",
    "IndexWriter",
    "read_manifest",
    "write_manifest",
]

FORMAT_NAME = "stylesearch-index"
#: 3: every index has its coarse partition (format 2 could lack it)
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
DELETED = "deleted.npy"


MANIFEST_FORMAT = ManifestFormat(
    file=MANIFEST,
    name=FORMAT_NAME,
    title="stylesearch index manifest",
    newest=FORMAT_VERSION,
    oldest=FORMAT_VERSION,
    error=IndexFormatError,
    fix="rebuild the index with `stylesearch index`",
)


def write_manifest(index_dir: str | Path, manifest: dict[str, Any]) -> None:
    """Replace the folder's ``manifest.json`` by ``manifest`` (atomically, synced to disk)."""

    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    replace_files(Path(index_dir), {MANIFEST: write})


class IndexWriter:
    """Write an index folder into a temporary folder, then swap it into place.

    Usage::

        with IndexWriter(out, n=N, dim=D, vocab_size=V) as w:
            w.vectors[a:b] = unit_vectors        # (N, D) float32 memmap
            w.attributes[a:b] = probabilities    # (N, V) float16 memmap (Fortran order)
            w.set_items(ids, titles, images)
            w.set_metadata(offsets, words)       # CSR of vocabulary ids, csr_from_bags
            w.finish(backend="faiss-hnsw", backend_params={...}, manifest={...})

    ``finish`` builds the backend, writes the derived files and the manifest, and swaps the
    folder in. Leaving the block with an exception (or without ``finish``) deletes the temporary
    folder; an existing index at ``out`` is untouched. ``out`` may be missing, an empty folder or
    an existing index; anything else is refused (we never delete a folder we did not write).
    """

    def __init__(self, out_dir: str | Path, *, n: int, dim: int, vocab_size: int) -> None:
        self.out_dir = Path(out_dir)
        if n < 1 or dim < 1 or vocab_size < 1:
            raise ValueError(
                f"an index needs n, dim, vocab_size >= 1, got {n}, {dim}, {vocab_size}"
            )
        if self.out_dir.exists():
            is_index = (self.out_dir / MANIFEST).is_file()
            if not self.out_dir.is_dir() or (not is_index and any(self.out_dir.iterdir())):
                raise IndexFormatError(
                    f"{self.out_dir} exists and is not an index folder; refusing to replace it "
                    "(choose another --out or remove it)"
                )
        self.n, self.dim, self.vocab_size = n, dim, vocab_size
        self._folder = FolderSwap(self.out_dir)  # holds the writer lock until swap or abort
        self.tmp = self._folder.tmp
        fmt = np.lib.format
        self.vectors = fmt.open_memmap(self.tmp / "vectors.npy", "w+", np.float32, (n, dim))
        self.attributes = fmt.open_memmap(
            self.tmp / "attributes.npy", "w+", np.float16, (n, vocab_size), fortran_order=True
        )
        self._items = False
        self._metadata = False
        self._done = False
        self.n_deleted = 0

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self._done:
            self.abort()

    def abort(self) -> None:
        """Delete the temporary folder (the target is untouched)."""
        self.vectors = self.attributes = None  # type: ignore[assignment]
        self._folder.close()

    def set_items(
        self,
        ids: list[str],
        titles: list[str],
        images: list[str],
        *,
        deleted: np.ndarray | None = None,
    ) -> None:
        """Row order ids, titles and image paths. Ids must be unique among the rows not marked
        in ``deleted`` ``(N,)`` bool (the tombstones, written to ``deleted.npy``)."""
        if not len(ids) == len(titles) == len(images) == self.n:
            raise ValueError(f"expected {self.n} ids, titles and images")
        live_ids = (
            ids if deleted is None else [i for i, d in zip(ids, deleted, strict=True) if not d]
        )
        if len(set(live_ids)) != len(live_ids):
            raise ValueError("item ids must be unique")
        if deleted is not None:
            deleted = np.asarray(deleted, dtype=bool)
            if deleted.shape != (self.n,):
                raise ValueError(f"deleted must be an ({self.n},) bool mask")
            self.n_deleted = int(np.count_nonzero(deleted))
            if self.n_deleted:
                np.save(self.tmp / DELETED, deleted)
        offsets = np.zeros(self.n + 1, dtype=np.int64)
        with open(self.tmp / "items.jsonl", "wb") as fh:
            for i, (item_id, title, image) in enumerate(zip(ids, titles, images, strict=True)):
                line = json.dumps({"id": item_id, "title": title, "image": image}) + "\n"
                fh.write(line.encode("utf-8"))
                offsets[i + 1] = fh.tell()
        np.save(self.tmp / "items_offsets.npy", offsets)
        self._items = True

    def set_metadata(self, offsets: np.ndarray, words: np.ndarray) -> None:
        offsets = np.asarray(offsets, dtype=np.int64)
        words = np.asarray(words, dtype=np.int32)
        if offsets.shape != (self.n + 1,) or offsets[0] != 0 or offsets[-1] != words.shape[0]:
            raise ValueError("metadata offsets must have N + 1 entries from 0 to len(words)")
        if words.size and (words.min() < 0 or words.max() >= self.vocab_size):
            raise ValueError("metadata word ids out of the vocabulary's range")
        np.save(self.tmp / "metadata_offsets.npy", offsets)
        np.save(self.tmp / "metadata_words.npy", words)
        p_off, p_rows = invert_csr(offsets, words, self.vocab_size)
        np.save(self.tmp / "postings_offsets.npy", p_off)
        np.save(self.tmp / "postings_rows.npy", p_rows)
        self._metadata = True

    def finish(
        self,
        *,
        backend: str,
        backend_params: dict[str, Any] | None = None,
        manifest: dict[str, Any] | None = None,
        progress: bool = False,
        postings: dict[str, float] | None = None,
        backend_update: Callable[[np.ndarray, Path], VectorBackend] | None = None,
        coarse_clusters: int | None = None,
    ) -> Path:
        """Derive the bound files, build the backend, write the manifest, swap into place.

        ``backend_update(vectors, folder)``, when given, replaces the backend's ``build``: it
        writes the backend's files into ``folder`` from an existing index's (``index add``
        extends a graph instead of building a new one) and returns the backend.
        ``coarse_clusters``: clusters of the coarse partition (default: about one per 384 rows).
        """
        if not (self._items and self._metadata):
            raise ValueError("call set_items and set_metadata before finish")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
        self.vectors.flush()
        self.attributes.flush()
        entries = write_attribute_lists(self.attributes, self.tmp, postings)
        t0 = time.perf_counter()
        coarse = build_coarse(self.vectors, self.attributes, self.tmp, clusters=coarse_clusters)
        coarse["build_seconds"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        if backend_update is not None:
            built = backend_update(self.vectors, self.tmp)
        else:
            built = BACKENDS[backend].build(
                self.vectors, self.tmp, progress=progress, **(backend_params or {})
            )
        build_seconds = time.perf_counter() - t0
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "count": self.n,
            "deleted": self.n_deleted,
            "live": self.n - self.n_deleted,
            "dimension": self.dim,
            "vocab_size": self.vocab_size,
            "backend": {"name": backend, "params": built.params()},
            "attribute_postings": {
                "min_value": POSTING_MIN_VALUE,
                "min_fraction": POSTING_MIN_FRACTION,
                "max_fraction": POSTING_MAX_FRACTION,
                **(postings or {}),
                "entries": entries,
            },
            "build_seconds": round(build_seconds, 3),
            "coarse": coarse,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(manifest or {}),
        }
        del built
        self.vectors = self.attributes = None  # type: ignore[assignment]
        write_manifest(self.tmp, meta)
        self._swap()
        self._done = True
        return self.out_dir

    def _swap(self) -> None:
        self._folder.commit()


def read_manifest(index_dir: str | Path) -> dict[str, Any]:
    """The parsed ``manifest.json``; :class:`IndexFormatError` when it is not an index."""
    missing = (
        f"{index_dir} is not a stylesearch index (no {MANIFEST}); build one with "
        "`stylesearch index --model MODEL_DIR --catalog MANIFEST --out INDEX_DIR`"
    )
    return read_manifest_json(index_dir, MANIFEST_FORMAT, missing)


@dataclass
class ItemRecord:
    """One indexed item's stored fields."""

    id: str
    title: str
    image: str


class Index:
    """A loaded index folder. Arrays are read-only memory maps unless the backend holds them.

    Attributes:
        manifest: the parsed ``manifest.json``.
        backend: the :class:`~stylesearch.index.backends.VectorBackend`.
        vectors: ``(N, D)`` float32 unit rows (the backend's own copy for faiss).
        attributes: ``(N, V)`` float16 p, Fortran order.
        attr_max, attr_min: ``(V,)`` float32 column maxima / minima of p.
        coarse: the :class:`~stylesearch.index.coarse.CoarseIndex` (every index has one).
        attr_post_offsets, attr_post_rows, attr_post_values, attr_post_floor: the sorted
            per-word attribute posting lists (:meth:`attribute_list`).
        meta_offsets, meta_words: item -> word ids CSR; post_offsets, post_rows: word -> rows.
    """

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.count = int(manifest["count"])
        self.dimension = int(manifest["dimension"])
        self.vocab_size = int(manifest["vocab_size"])
        raw_vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        # plain ndarray views of the read-only memory maps: each slice of a np.memmap object
        # costs Python-level bookkeeping that a plain view's does not (benchmarks/topk_micro.py,
        # docs/performance.md), and a query takes hundreds of slices
        self.attributes = mapped(folder / "attributes.npy", populate=True)
        self.attr_post_offsets = np.load(folder / "attr_postings_offsets.npy")
        self.attr_post_rows = mapped(folder / "attr_postings_rows.npy", populate=True)
        self.attr_post_values = mapped(folder / "attr_postings_values.npy", populate=True)
        self.attr_post_floor = np.load(folder / "attr_postings_floor.npy")
        self.attr_max = np.load(folder / "attributes_max.npy")
        self.attr_min = np.load(folder / "attributes_min.npy")
        self.meta_offsets = mapped(folder / "metadata_offsets.npy")
        self.meta_words = mapped(folder / "metadata_words.npy")
        self.post_offsets = np.load(folder / "postings_offsets.npy")
        self.post_rows = mapped(folder / "postings_rows.npy")
        self.item_offsets = np.load(folder / "items_offsets.npy")
        self.n_deleted = int(manifest.get("deleted", 0))
        #: (N,) bool tombstones (rows removed by ``index delete``), None when nothing is deleted
        self.deleted: np.ndarray | None = None
        if self.n_deleted:
            self.deleted = np.load(folder / DELETED)
            if self.deleted.shape != (self.count,) or int(self.deleted.sum()) != self.n_deleted:
                raise IndexFormatError(
                    f"{folder / DELETED}: does not mark the manifest's {self.n_deleted} deleted "
                    f"of {self.count} rows; rebuild the index"
                )
        #: searchable items (rows not deleted)
        self.live_count = self.count - self.n_deleted
        shapes = {
            "vectors.npy": (raw_vectors.shape, (self.count, self.dimension)),
            "attributes.npy": (self.attributes.shape, (self.count, self.vocab_size)),
            "attr_postings_offsets.npy": (self.attr_post_offsets.shape, (self.vocab_size + 1,)),
            "attr_postings_floor.npy": (self.attr_post_floor.shape, (self.vocab_size,)),
            "items_offsets.npy": (self.item_offsets.shape, (self.count + 1,)),
            "metadata_offsets.npy": (self.meta_offsets.shape, (self.count + 1,)),
            "postings_offsets.npy": (self.post_offsets.shape, (self.vocab_size + 1,)),
        }
        for name, (got, want) in shapes.items():
            if tuple(got) != want:
                raise IndexFormatError(f"{folder / name}: shape {got}, manifest implies {want}")
        backend_meta = manifest["backend"]
        cls = BACKENDS.get(backend_meta["name"])
        if cls is None:
            raise IndexFormatError(f"{folder}: unknown backend {backend_meta['name']!r}")
        try:
            self.backend: VectorBackend = cls.load(raw_vectors, folder, backend_meta["params"])
        except (ValueError, RuntimeError) as exc:
            raise IndexFormatError(f"{folder}: cannot load the {cls.name} backend: {exc}") from None
        self.vectors = self.backend.vectors
        #: the coarse partition: the exact soft-filter top-k's score bounds
        coarse_meta = manifest.get("coarse")
        if not coarse_meta or int(coarse_meta.get("count", -1)) != self.count:
            raise IndexFormatError(
                f"{folder}: no coarse partition of its {self.count} rows (an index of an older "
                "format); rebuild the index with `stylesearch index`"
            )
        self.coarse: CoarseIndex = CoarseIndex.load(folder)
        if self.coarse.count != self.count:
            raise IndexFormatError(f"{folder}: coarse_assign.npy does not cover every row")
        self.coarse.attach_lists(self.attr_post_rows)
        self._items_fh = open(folder / "items.jsonl", "rb")  # noqa: SIM115 -- closed in close()
        self._id_to_row: dict[str, int] | None = None

    @classmethod
    def load(cls, index_dir: str | Path) -> Index:
        """Open an index folder; :class:`IndexFormatError` with a clear reason if unusable."""
        folder = Path(index_dir)
        manifest = read_manifest(folder)
        try:
            return cls(folder, manifest)
        except FileNotFoundError as exc:
            raise IndexFormatError(
                f"{folder}: incomplete index, missing {Path(exc.filename).name}; rebuild it"
            ) from None
        except (KeyError, TypeError) as exc:
            raise IndexFormatError(f"{folder}/{MANIFEST}: incomplete or invalid: {exc}") from None

    def close(self) -> None:
        """Close the items file and the backend (Milvus: its server connection)."""
        self._items_fh.close()
        self.backend.close()

    def item(self, row: int) -> ItemRecord:
        """The stored id, title and image path of ``row``."""
        start, stop = int(self.item_offsets[row]), int(self.item_offsets[row + 1])
        data = os.pread(self._items_fh.fileno(), stop - start, start)
        rec = json.loads(data)
        return ItemRecord(rec["id"], rec["title"], rec["image"])

    def live_mask(self) -> np.ndarray | None:
        """``(N,)`` bool, True for the rows search may return; ``None`` when none is deleted."""
        return None if self.deleted is None else ~self.deleted

    def model_dir(self, given: str | Path | None = None) -> Path:
        """``given``, else the model folder the manifest records; IndexMismatchError when the
        recorded folder is gone."""
        if given is not None:
            return Path(given)
        recorded = self.manifest.get("model_dir")
        if not recorded or not Path(recorded).is_dir():
            raise IndexMismatchError(
                f"{self.folder}: the model it was built with ({recorded}) is not there any "
                "more; pass the model folder explicitly (--model MODEL_DIR)"
            )
        return Path(recorded)

    def check_model(self, model: Any) -> None:
        """:class:`IndexMismatchError` unless ``model`` (a loaded ``JointModel``) is the one the
        index was built with: its weights, its vocabulary and its dimension. A model without a
        vocabulary is refused: it could not read a query word, nor show that the attribute
        columns are its words."""
        want, got = self.manifest.get("model_fingerprint"), model.fingerprint()
        if want != got:
            raise IndexMismatchError(
                f"index {self.folder} was built with model {str(want)[:12]}... "
                f"({self.manifest.get('model_dir')}) but the model given is {str(got)[:12]}...; "
                "use the model it was built with, or rebuild the index with this one "
                "(`stylesearch index --model MODEL_DIR ...`)"
            )
        vocab = model.vocab
        if vocab is None or self.manifest.get("vocab_fingerprint") != vocab.fingerprint():
            raise IndexMismatchError(
                f"index {self.folder} was built with vocabulary "
                f"{self.manifest.get('vocab_fingerprint')} but the model's is "
                f"{None if vocab is None else vocab.fingerprint()}"
            )
        if int(self.dimension) != model.index_dim:
            raise IndexMismatchError(
                f"index {self.folder} has dimension {self.dimension}, the model {model.index_dim}"
            )
        look = getattr(model, "look", None)
        built = self.manifest.get("look_version")
        if look is not None and built != look.version:
            read = "before looks had versions" if built is None else f"at version {built}"
            raise IndexMismatchError(
                f"index {self.folder} holds looks read {read}, and this stylesearch reads the "
                f"model's {look.kind!r} look at version {look.version}: the rows and the "
                "queries would not compare. Rebuild the index "
                f"(`stylesearch index --model {self.manifest.get('model_dir')} --catalog "
                f"{self.manifest.get('catalog')} --out {self.folder}`)"
            )

    def row_of(self, item_id: str) -> int | None:
        """Row of a live item id, or ``None``. The id table is read on first use (one pass)."""
        if self._id_to_row is None:
            table: dict[str, int] = {}
            with open(self.folder / "items.jsonl", encoding="utf-8") as fh:
                for row, line in enumerate(fh):
                    if self.deleted is None or not self.deleted[row]:
                        table[json.loads(line)["id"]] = row
            self._id_to_row = table
        return self._id_to_row.get(item_id)

    def metadata_word_ids(self, row: int) -> np.ndarray:
        """Vocabulary ids of ``row``'s metadata words."""
        return np.asarray(self.meta_words[self.meta_offsets[row] : self.meta_offsets[row + 1]])

    def attribute_list(self, word_id: int) -> tuple[np.ndarray, np.ndarray, float]:
        """``(rows, values, floor)``: the rows of word ``word_id``'s highest ``p_w``, sorted by
        ``p_w`` descending (``values``, float16, memory-mapped); every other row has
        ``p_w <= floor``."""
        start, stop = int(self.attr_post_offsets[word_id]), int(self.attr_post_offsets[word_id + 1])
        return (
            self.attr_post_rows[start:stop],
            self.attr_post_values[start:stop],
            float(self.attr_post_floor[word_id]),
        )

    def rows_with_word(self, word_id: int) -> np.ndarray:
        """Sorted rows whose metadata contains ``word_id`` (int32)."""
        return np.asarray(
            self.post_rows[self.post_offsets[word_id] : self.post_offsets[word_id + 1]]
        )
