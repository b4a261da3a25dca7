"""The faiss HNSW backend: faiss ``IndexHNSWFlat`` with the inner-product metric, the embedded
default for large catalogs (latency and recall: docs/performance.md).

Its parameters (:class:`~stylesearch.index.backends.base.HNSWParams`: ``M``,
``ef_construction``, ``ef_search``, ``exact_below``, ``ef_retry``: the adaptive efSearch for
queries off the data manifold) are recorded in the index manifest. A graph index loses recall
under a selective filter (docs/search.md), so when ``allowed`` keeps less than ``exact_below``
of the items the backend scores the allowed rows exactly (faiss ``compute_distance_subset``: no
copy of the rows); above it, faiss searches the graph with an ``IDSelectorBitmap`` and an
``efSearch`` raised to ``2 k / fraction`` (capped at 4096).

The flat storage inside the faiss index doubles as the vector matrix (:attr:`vectors`, a
zero-copy view), so the vectors are held in memory once. On Linux the vectors and the graph's
neighbour lists are moved onto 2 MB pages at load (:func:`~stylesearch.index.memory.huge_pages`):
a query reads thousands of random rows, and with 4 KB pages nearly each one misses the TLB
(``benchmarks/memory_warmth.py pages``; docs/performance.md).

:meth:`FaissHNSWBackend.score_rows` is the same distance function the graph search uses, so a
row scored both ways gets the same cosine.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from stylesearch.index.backends.base import (
    AddedRows,
    HNSWParams,
    as_queries,
    empty_results,
    register_backend,
    top_k_of,
)
from stylesearch.index.errors import IndexFormatError
from stylesearch.index.filters import RowFilter
from stylesearch.index.memory import huge_pages

__all__ = ["FAISS_FILE", "FaissHNSWBackend"]

FAISS_FILE = "hnsw.faiss"
#: adaptive efSearch (:attr:`HNSWParams.ef_retry`): largest k it applies to, and the margin
RETRY_MAX_K = 64
RETRY_MARGIN = 0.8
#: rows sampled (as queries) to measure the catalog's typical 10th-neighbour cosine
RETRY_SAMPLES = 32
#: upper limit for the efSearch used under a filter
MAX_FILTERED_EF = 4096


@register_backend
class FaissHNSWBackend:
    """faiss ``IndexHNSWFlat`` (inner product) with exact search for selective filters."""

    name = "faiss-hnsw"

    def __init__(self, index: Any, hnsw: HNSWParams) -> None:
        import faiss

        self._faiss = faiss
        self.index = index
        self.hnsw = hnsw
        storage = faiss.downcast_index(index.storage)
        self._storage = storage
        n, dim = index.ntotal, index.d
        # zero-copy view of the vectors held by faiss; valid while self.index lives
        view = faiss.rev_swig_ptr(storage.get_xb(), n * dim) if n else np.zeros(0, np.float32)
        self.vectors = np.asarray(view).reshape(n, dim)
        self.vectors.flags.writeable = False
        #: whether the vectors and the graph sit on huge pages (see the module docstring)
        self.huge_pages = False
        if n:
            self.huge_pages = huge_pages(self.vectors.ctypes.data, self.vectors.nbytes)
            neighbors = getattr(index.hnsw, "neighbors", None)
            if neighbors is not None and hasattr(neighbors, "data"):
                huge_pages(int(neighbors.data()), 4 * int(neighbors.size()))
        self._retry_below = self._typical_cosine() * RETRY_MARGIN if hnsw.ef_retry else -np.inf

    def _typical_cosine(self, depth: int = 10) -> float:
        """Median cosine of the ``depth``-th neighbour (itself excluded) of sampled rows, at
        the retry efSearch (-inf for a catalog too small to tell)."""
        n = self.vectors.shape[0]
        if n <= depth + 1:
            return -np.inf
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(n, size=min(RETRY_SAMPLES, n), replace=False))
        params = self._faiss.SearchParametersHNSW(efSearch=max(self.hnsw.ef_retry, depth + 1))
        scores, _ = self.index.search(
            np.ascontiguousarray(self.vectors[rows]), depth + 1, params=params
        )
        return float(np.median(scores[:, depth]))

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        folder: Path,
        *,
        chunk: int = 65536,
        progress: bool = False,
        **params: Any,
    ) -> FaissHNSWBackend:
        """Build the graph over ``vectors`` ``(N, D)`` and write ``folder/hnsw.faiss``."""
        import faiss

        hnsw = HNSWParams(**params)
        n, dim = vectors.shape
        index = faiss.IndexHNSWFlat(dim, hnsw.M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = hnsw.ef_construction
        index.hnsw.efSearch = hnsw.ef_search
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="hnsw", unit="vec")
        for start in range(0, n, chunk):
            block = np.ascontiguousarray(vectors[start : start + chunk], dtype=np.float32)
            index.add(block)
            if bar is not None:
                bar.update(block.shape[0])
        if bar is not None:
            bar.close()
        faiss.write_index(index, str(Path(folder) / FAISS_FILE))
        return cls(index, hnsw)

    @classmethod
    def load(cls, vectors: np.ndarray, folder: Path, params: dict[str, Any]) -> FaissHNSWBackend:
        import faiss

        index = faiss.read_index(str(Path(folder) / FAISS_FILE))
        if index.ntotal != vectors.shape[0] or index.d != vectors.shape[1]:
            raise ValueError(
                f"{folder / FAISS_FILE}: holds {index.ntotal} x {index.d} vectors but the index "
                f"has {vectors.shape[0]} x {vectors.shape[1]}"
            )
        return cls(index, HNSWParams(**params))

    @classmethod
    def extend(
        cls,
        vectors: np.ndarray,
        folder: Path,
        params: dict[str, Any],
        added: AddedRows,
        *,
        chunk: int = 65536,
    ) -> FaissHNSWBackend:
        """``index add``: the graph of the index at ``added.old_folder`` (rows ``:start``) with
        rows ``start:`` of ``vectors`` inserted (no new graph is built), written to ``folder``."""
        import faiss

        old_file = added.old_folder / FAISS_FILE
        graph = faiss.read_index(str(old_file))
        if graph.ntotal != added.start:
            raise IndexFormatError(f"{old_file}: {graph.ntotal} != {added.start} rows")
        hnsw = HNSWParams(**params)
        graph.hnsw.efConstruction = hnsw.ef_construction
        for s in range(added.start, vectors.shape[0], chunk):
            graph.add(np.ascontiguousarray(vectors[s : s + chunk], dtype=np.float32))
        faiss.write_index(graph, str(folder / FAISS_FILE))
        return cls(graph, hnsw)

    def params(self) -> dict[str, Any]:
        return asdict(self.hnsw)

    def close(self) -> None:
        """Nothing to release: the graph is in memory."""

    def score_rows(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        faiss = self._faiss
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.vectors.shape[1]:
            raise ValueError(f"query must have {self.vectors.shape[1]} dimensions, got {q.shape}")
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        out = np.empty(rows.shape[0], dtype=np.float32)
        if rows.shape[0]:
            if rows.min() < 0 or rows.max() >= self.vectors.shape[0]:
                raise IndexError("row out of range")
            self._storage.compute_distance_subset(
                1, faiss.swig_ptr(q), rows.shape[0], faiss.swig_ptr(out), faiss.swig_ptr(rows)
            )
        return out

    def _exact_subset(
        self, q: np.ndarray, k: int, allowed: RowFilter
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = allowed.allowed_rows()
        out_s, out_r = empty_results(q.shape[0], k)
        for i in range(q.shape[0]):
            out_s[i], out_r[i] = top_k_of(self.score_rows(q[i], rows), rows, k)
        return out_s, out_r

    def search(
        self, queries: np.ndarray, k: int, allowed: RowFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        n, dim = self.vectors.shape
        q = as_queries(queries, dim, k)
        if k == 0 or n == 0:
            return empty_results(q.shape[0], k)
        if allowed is None:
            params = faiss.SearchParametersHNSW(efSearch=max(self.hnsw.ef_search, k))
            scores, rows = self.index.search(q, k, params=params)
            if k <= RETRY_MAX_K and self.hnsw.ef_retry > max(self.hnsw.ef_search, k):
                at = min(k, 10) - 1
                retry = np.flatnonzero(~(scores[:, at] >= self._retry_below))
                if retry.shape[0]:  # off the manifold or stuck: search again, wider
                    params = faiss.SearchParametersHNSW(efSearch=self.hnsw.ef_retry)
                    s2, r2 = self.index.search(np.ascontiguousarray(q[retry]), k, params=params)
                    scores[retry], rows[retry] = s2, r2
        else:
            count = allowed.count
            fraction = count / n
            if count <= k or fraction < self.hnsw.exact_below:
                return self._exact_subset(q, k, allowed)
            bitmap = np.packbits(allowed.mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
            ef = max(self.hnsw.ef_search, k, math.ceil(2 * k / fraction))
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=min(ef, MAX_FILTERED_EF))
            scores, rows = self.index.search(q, k, params=params)
        rows = rows.astype(np.int64, copy=False)
        scores = np.where(rows < 0, -np.inf, scores).astype(np.float32, copy=False)
        return scores, rows
