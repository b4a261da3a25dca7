"""The Milvus backend: the catalog's vectors in a Milvus collection (standalone or a cluster, the
same pymilvus calls), for catalogs that outgrow one machine's memory (docs/scaling.md).

Collection schema (one entity per index row)::

    row     INT64 primary key = the index row number
    vector  FLOAT_VECTOR (D), HNSW index, inner-product metric (M, efConstruction from the
            manifest; ef at search time = max(ef_search, k))
    words   ARRAY<INT64> the item's metadata word ids (vocabulary ids of the index's model)

Hard filters run inside Milvus as expressions on ``words``: ``array_contains_all(words, [..])``
for the must words and ``not array_contains_any(words, [..])`` for the must-not words (the
:class:`~stylesearch.index.filters.RowFilter` the search layer passes carries them). The attribute
probabilities, sorted attribute lists, metadata postings and a copy of the vectors stay in the
index folder as for every backend: the exact soft-filter top-k of :mod:`stylesearch.search.topk`
reads them (candidate deepening + exact re-scoring), so ``filter`` and ``combined`` keep their
guarantee, and every result's cosine is recomputed from the local vectors (the same arithmetic
as :meth:`score_rows`). A filter keeping fewer than ``exact_below`` of the rows is answered
exactly from the local vectors, as the faiss backend does.

Deleted rows (``index delete``) are deleted from the collection too and filtered out locally
(``deleted.npy``), so a collection that still holds them (a failed delete) never returns them.
The manifest records the URI and collection; ``STYLESEARCH_MILVUS_URI`` overrides the URI at load
time (the same index folder against another address of the same Milvus).
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from stylesearch.errors import StylesearchError
from stylesearch.index.backends.base import (
    AddedRows,
    HNSWParams,
    as_queries,
    empty_results,
    register_backend,
    score_rows_exact,
    top_k_of,
)
from stylesearch.index.filters import RowFilter

__all__ = [
    "MILVUS_URI_ENV",
    "MilvusBackend",
    "MilvusError",
    "delete_rows",
    "drop_collection",
]

#: environment variable that overrides the manifest's Milvus URI when an index is loaded
MILVUS_URI_ENV = "STYLESEARCH_MILVUS_URI"
#: Milvus's largest ``limit`` of one search
MAX_TOPK = 16384
#: ARRAY field capacity (Milvus's maximum): metadata words per item
MAX_WORDS = 4096
#: rows per insert request (well under the 64 MB gRPC message limit for D <= 1024)
INSERT_ROWS = 8192
#: consistency level of searches. "Strong" makes every search wait for the next time tick
#: (docs/scaling.md); instead :meth:`MilvusBackend.load` and every write here end with a
#: "Strong" query, after which the query nodes serve at least that state, and searches use
#: "Bounded" (no wait). Rows written later by another process are not in this process's index folder
#: anyway (they are filtered out until the index is loaded again).
SEARCH_CONSISTENCY = "Bounded"
#: seconds allowed for one request, and for an index build to finish
TIMEOUT = 120.0
INDEX_TIMEOUT = 3600.0


class MilvusError(StylesearchError, RuntimeError):
    """Milvus is unreachable or its collection does not match the index (message says what)."""


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:
        raise MilvusError(
            "the Milvus backend needs pymilvus: pip install 'stylesearch[milvus]'"
        ) from None
    return pymilvus


def _probe(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, before pymilvus opens a gRPC channel, when nothing listens at ``uri``'s host
    and port: pymilvus 2.3 keeps the channel of a failed connect open, with a thread polling
    it, and a process that forks later (DataLoader workers) can crash in that thread."""
    try:
        parts = urlsplit(uri if "://" in uri else f"tcp://{uri}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise MilvusError(f"invalid Milvus address {uri!r}: {exc}") from None
    if not host or port is None:
        return  # no explicit port: leave the address's defaults to pymilvus
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise MilvusError(
            f"cannot connect to Milvus at {uri}: nothing answers at {host}:{port} ({exc}); "
            "start the server or pass its address (--milvus-uri or STYLESEARCH_MILVUS_URI)"
        ) from None


def _connect(uri: str) -> str:
    """Open a pymilvus connection to ``uri``; returns its alias."""
    _probe(uri)
    pm = _pymilvus()
    alias = f"stylesearch-{uuid.uuid4().hex[:8]}"
    try:
        pm.connections.connect(alias=alias, uri=uri, timeout=15)
    except Exception as exc:  # noqa: BLE001 -- pymilvus raises several unrelated types
        raise MilvusError(f"cannot connect to Milvus at {uri}: {exc}") from None
    return alias


def _words_expr(
    must: tuple[int, ...],
    must_not: tuple[int, ...],
    must_any: tuple[tuple[int, ...], ...] = (),
) -> str:
    parts = []
    if must:
        parts.append(f"array_contains_all(words, {list(must)})")
    for group in must_any:
        parts.append(f"array_contains_any(words, {list(group)})")
    if must_not:
        parts.append(f"not array_contains_any(words, {list(must_not)})")
    return " and ".join(parts)


def _rows_words(
    offsets: np.ndarray, words: np.ndarray, rows: np.ndarray, first: int = 0
) -> list[list[int]]:
    """Metadata word lists of ``rows`` (offsets / words are a CSR starting at row ``first``)."""
    out = []
    for r in rows.tolist():
        bag = np.asarray(words[offsets[r - first] : offsets[r - first + 1]], dtype=np.int64)
        if bag.shape[0] > MAX_WORDS:
            raise MilvusError(
                f"row {r} has {bag.shape[0]} metadata words; Milvus arrays hold at most {MAX_WORDS}"
            )
        out.append(bag.tolist())
    return out


@register_backend
class MilvusBackend:
    """Top-k by inner product in a Milvus collection (see the module docstring)."""

    name = "milvus"

    def __init__(
        self,
        vectors: np.ndarray,
        params: dict[str, Any],
        *,
        deleted: np.ndarray | None = None,
        alias: str | None = None,
    ) -> None:
        self.vectors = vectors
        self.uri = str(params["uri"])
        self.collection_name = str(params["collection"])
        self.hnsw = HNSWParams(
            **{k: params[k] for k in ("M", "ef_construction", "ef_search", "exact_below")}
        )
        self.deleted = deleted
        self.alias = alias or _connect(self.uri)
        pm = _pymilvus()
        if not pm.utility.has_collection(self.collection_name, using=self.alias):
            raise MilvusError(
                f"Milvus at {self.uri} has no collection {self.collection_name!r}; rebuild the "
                "index (`stylesearch index ... --backend milvus`)"
            )
        self.collection = pm.Collection(self.collection_name, using=self.alias)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        folder: Path,
        *,
        progress: bool = False,
        uri: str | None = None,
        collection: str | None = None,
        **params: Any,
    ) -> MilvusBackend:
        """Create the collection, insert the rows (not those in ``folder/deleted.npy``) with
        their metadata words (``folder/metadata_*.npy``), build the HNSW index and load it."""
        if not uri:
            raise MilvusError("the Milvus backend needs a server address: --milvus-uri URI")
        hnsw = HNSWParams(**params)
        name = collection or f"stylesearch_{uuid.uuid4().hex[:12]}"
        alias = _connect(uri)
        pm = _pymilvus()
        if pm.utility.has_collection(name, using=alias):
            raise MilvusError(
                f"Milvus at {uri} already has a collection {name!r}; choose another --collection "
                "(or drop that one)"
            )
        n, dim = vectors.shape
        fields = [
            pm.FieldSchema("row", pm.DataType.INT64, is_primary=True, auto_id=False),
            pm.FieldSchema("vector", pm.DataType.FLOAT_VECTOR, dim=dim),
            pm.FieldSchema(
                "words", pm.DataType.ARRAY, element_type=pm.DataType.INT64, max_capacity=MAX_WORDS
            ),
        ]
        schema = pm.CollectionSchema(fields, description="stylesearch index rows")
        coll = pm.Collection(name, schema, using=alias, consistency_level="Strong")
        try:
            deleted = _load_deleted(folder, n)
            rows = np.arange(n) if deleted is None else np.flatnonzero(~deleted)
            offsets = np.load(folder / "metadata_offsets.npy", mmap_mode="r")
            words = np.load(folder / "metadata_words.npy", mmap_mode="r")
            _insert(coll, vectors, rows, offsets, words, progress=progress)
            coll.create_index(
                "vector",
                {
                    "index_type": "HNSW",
                    "metric_type": "IP",
                    "params": {"M": hnsw.M, "efConstruction": hnsw.ef_construction},
                },
                timeout=TIMEOUT,
            )
            _wait_indexed(coll, alias)
            coll.load(timeout=INDEX_TIMEOUT)
        except BaseException:
            pm.utility.drop_collection(name, using=alias)
            raise
        record = {"uri": uri, "collection": name, **asdict(hnsw)}
        backend = cls(vectors, record, deleted=deleted, alias=alias)
        backend.count("row >= 0")  # a Strong read: later searches see every row written
        return backend

    @classmethod
    def extend(
        cls, vectors: np.ndarray, folder: Path, params: dict[str, Any], added: AddedRows
    ) -> MilvusBackend:
        """``index add``: insert rows ``start:`` (metadata CSR ``added.new_metadata`` counts
        from ``start``) after deleting rows ``>= start`` a failed earlier add may have left. The
        collection is the one ``params`` names (``added.old_folder``'s index uses it too)."""
        start = added.start
        backend = cls(vectors, params, deleted=_load_deleted(folder, vectors.shape[0]))
        coll = backend.collection
        coll.delete(f"row >= {int(start)}", timeout=TIMEOUT)
        rows = np.arange(start, vectors.shape[0])
        offsets, words = added.new_metadata
        _insert(coll, vectors, rows, offsets, words, first=start)
        _wait_indexed(coll, backend.alias)
        coll.load(timeout=INDEX_TIMEOUT)
        backend.count("row >= 0")  # a Strong read: later searches see every row written
        return backend

    @classmethod
    def load(cls, vectors: np.ndarray, folder: Path, params: dict[str, Any]) -> MilvusBackend:
        """Connect to the collection the manifest names and check it holds the live rows."""
        params = dict(params)
        params["uri"] = os.environ.get(MILVUS_URI_ENV) or params["uri"]
        n = vectors.shape[0]
        deleted = _load_deleted(folder, n)
        backend = cls(vectors, params, deleted=deleted)
        backend.collection.load(timeout=INDEX_TIMEOUT)
        live = n - (0 if deleted is None else int(deleted.sum()))
        held = backend.count(f"row < {n}")
        if held < live:
            raise MilvusError(
                f"collection {backend.collection_name!r} at {backend.uri} holds {held} of the "
                f"index's {live} items; rebuild the index"
            )
        return backend

    def count(self, expr: str) -> int:
        res = self.collection.query(
            expr=expr, output_fields=["count(*)"], consistency_level="Strong", timeout=TIMEOUT
        )
        return int(res[0]["count(*)"])

    def params(self) -> dict[str, Any]:
        return {"uri": self.uri, "collection": self.collection_name, **asdict(self.hnsw)}

    def close(self) -> None:
        """Close the connection, and with it its gRPC channel (see :func:`_probe`)."""
        _pymilvus().connections.disconnect(self.alias)

    # ------------------------------------------------------------------ searching

    def score_rows(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return score_rows_exact(self.vectors, query, rows)

    def _milvus_rows(self, q: np.ndarray, limit: int, expr: str) -> np.ndarray:
        res = self.collection.search(
            data=[q.tolist()],
            anns_field="vector",
            param={"metric_type": "IP", "params": {"ef": max(self.hnsw.ef_search, limit)}},
            limit=limit,
            expr=expr or None,
            output_fields=[],
            consistency_level=SEARCH_CONSISTENCY,
            timeout=TIMEOUT,
        )
        return np.asarray(list(res[0].ids), dtype=np.int64)

    def _one(
        self, q: np.ndarray, k: int, allowed: RowFilter | None
    ) -> tuple[np.ndarray, np.ndarray]:
        n = self.vectors.shape[0]
        keep = None if self.deleted is None else ~self.deleted
        # a filter by words is (metadata words) & (not deleted): Milvus applies the words as
        # an expression and holds no deleted row, so its answers need no deeper search
        by_words = allowed is not None and allowed.by_words
        covered = allowed is None or by_words
        expr = _words_expr(allowed.must, allowed.must_not, allowed.must_any) if by_words else ""
        fraction = 1.0
        if allowed is not None:
            keep = allowed.mask if keep is None else keep & allowed.mask
        if keep is not None:
            count = int(np.count_nonzero(keep))
            fraction = count / max(n, 1)
            if count <= k or fraction < self.hnsw.exact_below:
                rows = np.flatnonzero(keep).astype(np.int64)
                return top_k_of(self.score_rows(q, rows), rows, k)
        # a filter not by words: Milvus returns rows the mask drops, so ask for more
        limit = min(MAX_TOPK, k if covered else math.ceil(1.2 * k / max(fraction, 1e-9)) + 8)
        while True:
            got = self._milvus_rows(q, limit, expr)
            rows = got[got < n]
            if keep is not None:
                rows = rows[keep[rows]]
            if rows.shape[0] >= k or got.shape[0] < limit:
                return top_k_of(self.score_rows(q, rows), rows, k)
            if limit >= MAX_TOPK:  # cannot ask for more: answer exactly from the local vectors
                exact_rows = np.arange(n) if keep is None else np.flatnonzero(keep)
                return top_k_of(self.score_rows(q, exact_rows), exact_rows, k)
            limit = min(MAX_TOPK, 4 * limit)

    def search(
        self, queries: np.ndarray, k: int, allowed: RowFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows per query (see
        :class:`~stylesearch.index.backends.base.VectorBackend`)."""
        q = as_queries(queries, self.vectors.shape[1], k)
        out_s, out_r = empty_results(q.shape[0], k)
        if k == 0 or self.vectors.shape[0] == 0:
            return out_s, out_r
        if k > MAX_TOPK:
            raise ValueError(f"Milvus returns at most {MAX_TOPK} rows per search, asked for {k}")
        for i in range(q.shape[0]):
            out_s[i], out_r[i] = self._one(q[i], k, allowed)
        return out_s, out_r


def _load_deleted(folder: Path, n: int) -> np.ndarray | None:
    path = Path(folder) / "deleted.npy"
    if not path.is_file():
        return None
    deleted = np.load(path)
    if deleted.shape != (n,):
        raise MilvusError(f"{path}: shape {deleted.shape}, expected ({n},)")
    return deleted


def _insert(
    coll: Any,
    vectors: np.ndarray,
    rows: np.ndarray,
    offsets: np.ndarray,
    words: np.ndarray,
    *,
    first: int = 0,
    progress: bool = False,
) -> None:
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=rows.shape[0], desc="milvus insert", unit="vec")
    for s in range(0, rows.shape[0], INSERT_ROWS):
        block = rows[s : s + INSERT_ROWS]
        vecs = np.ascontiguousarray(vectors[block], dtype=np.float32)
        coll.insert(
            [block.tolist(), vecs, _rows_words(offsets, words, block, first)], timeout=TIMEOUT
        )
        if bar is not None:
            bar.update(block.shape[0])
    if bar is not None:
        bar.close()
    coll.flush(timeout=TIMEOUT)


def _wait_indexed(coll: Any, alias: str) -> None:
    """Wait until the HNSW index covers every row (ENVIRONMENT.md: search only after that)."""
    pm = _pymilvus()
    deadline = time.monotonic() + INDEX_TIMEOUT
    while True:
        progress = pm.utility.index_building_progress(coll.name, using=alias)
        if int(progress.get("pending_index_rows", 0)) == 0 and int(
            progress.get("indexed_rows", 0)
        ) >= int(progress.get("total_rows", 0)):
            return
        if time.monotonic() > deadline:
            raise MilvusError(f"Milvus did not finish indexing {coll.name} in {INDEX_TIMEOUT} s")
        time.sleep(0.5)


def drop_collection(uri: str, name: str) -> None:
    """Drop a collection (an index that was replaced); a failure is a warning, not an error."""
    try:
        alias = _connect(uri)
        pm = _pymilvus()
        if pm.utility.has_collection(name, using=alias):
            pm.utility.drop_collection(name, using=alias)
        pm.connections.disconnect(alias)
    except Exception as exc:  # noqa: BLE001 -- cleanup of an old collection must not fail a build
        warnings.warn(f"could not drop the replaced Milvus collection {name}: {exc}", stacklevel=2)


def delete_rows(params: dict[str, Any], rows: np.ndarray) -> None:
    """Delete ``rows`` (primary keys) from the index's collection (``index delete``)."""
    uri = os.environ.get(MILVUS_URI_ENV) or params["uri"]
    alias = _connect(uri)
    pm = _pymilvus()
    try:
        coll = pm.Collection(params["collection"], using=alias)
        rows = np.asarray(rows, dtype=np.int64)
        for s in range(0, rows.shape[0], INSERT_ROWS):
            coll.delete(f"row in {rows[s : s + INSERT_ROWS].tolist()}", timeout=TIMEOUT)
        coll.flush(timeout=TIMEOUT)
    except pm.exceptions.MilvusException as exc:
        raise MilvusError(f"deleting rows from {params['collection']} at {uri}: {exc}") from None
    finally:
        pm.connections.disconnect(alias)
