"""Vector backends: top-k by inner product over the catalog's unit vectors.

Every backend answers the same question, :meth:`VectorBackend.search`: for each query row, the
``k`` catalog rows with the largest inner product (= cosine, all vectors are L2-normalised),
optionally restricted to an ``allowed`` boolean mask, best first.

* :class:`ExactBackend`: a numpy matrix product over the memory-mapped ``vectors.npy``. It is the
  oracle every other backend is tested against (STYLE.md habit 4); O(N D) per query.
* :class:`FaissHNSWBackend`: faiss ``IndexHNSWFlat`` with the inner-product metric, the embedded
  default for large catalogs (ENVIRONMENT.md: 0.24 / 0.37 ms p50 / p99 at 1M, recall@10 0.999).
  Its parameters (``M``, ``ef_construction``, ``ef_search``, ``exact_below``, ``ef_retry``: the
  adaptive efSearch for queries off the data manifold) are recorded in the
  index manifest. A graph index loses recall under a selective filter (ENVIRONMENT.md: 0.83 with
  1 % of items allowed), so when ``allowed`` keeps less than ``exact_below`` of the items the
  backend scores the allowed rows exactly (faiss ``compute_distance_subset``: no copy of the
  rows); above it, faiss searches the graph with an
  ``IDSelectorBitmap`` and an ``efSearch`` raised to ``2 k / fraction`` (capped at 4096).
  The flat storage inside the faiss index doubles as the vector matrix (:attr:`vectors`, a
  zero-copy view), so the vectors are held in memory once. On Linux the vectors and the graph's
  neighbour lists are moved onto 2 MB pages at load (:func:`huge_pages`): a query reads
  thousands of random rows, and with 4 KB pages nearly each one missed the TLB (measured at
  1.5M items, ``benchmarks/memory_warmth.py pages``, CPU p50: a 600-deep graph search 1.48-1.61
  -> 1.34 ms, 3000 exact rows 0.69-0.72 -> 0.59-0.61 ms).

:meth:`VectorBackend.score_rows` gives the exact inner products of one query with given rows
(the exact soft-filter top-k scores its attribute candidates with it); for faiss it is the same
distance function the graph search uses, so a row scored both ways gets the same cosine.

Results: ``(scores, rows)``, each ``(Q, k)``: ``scores`` float32 inner products, descending;
``rows`` int64 row numbers. When fewer than ``k`` rows are allowed the rows are padded with ``-1``
and the scores with ``-inf``.
"""

from __future__ import annotations

import ctypes
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BACKENDS",
    "ExactBackend",
    "FaissHNSWBackend",
    "HNSWParams",
    "VectorBackend",
    "cosine_profile",
    "exact_search",
]

FAISS_FILE = "hnsw.faiss"
#: adaptive efSearch (:attr:`HNSWParams.ef_retry`): largest k it applies to, and the margin
RETRY_MAX_K = 64
RETRY_MARGIN = 0.8
#: rows sampled (as queries) to measure the catalog's typical 10th-neighbour cosine
RETRY_SAMPLES = 32
#: upper limit for the efSearch used under a filter
MAX_FILTERED_EF = 4096


@runtime_checkable
class VectorBackend(Protocol):
    """What the search layer needs from a vector index."""

    #: backend name recorded in the manifest ("exact", "faiss-hnsw")
    name: str
    #: ``(N, D)`` float32, L2-normalised rows (the catalog vectors, row = item)
    vectors: np.ndarray

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows per query by inner product (see the module docstring)."""
        ...

    def score_rows(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact inner products ``(len(rows),)`` float32 of one ``(D,)`` query with ``rows``."""
        ...

    def params(self) -> dict[str, Any]:
        """The parameters to record in the index manifest."""
        ...

    def close(self) -> None:
        """Release what the backend holds beyond memory (a server connection)."""
        ...


#: Linux madvise advice: back a range with 2 MB pages (MADV_HUGEPAGE, honoured when the system's
#: transparent huge pages are "madvise" or "always"), and collapse it into them now instead of
#: some time later (MADV_COLLAPSE, kernel 6.1+)
_MADV_HUGEPAGE, _MADV_COLLAPSE = 14, 25
_HUGE_PAGE = 2 << 20


def huge_pages(address: int, nbytes: int) -> bool:
    """Ask Linux to back the 2 MB-aligned part of ``[address, address + nbytes)`` (anonymous
    memory, e.g. a faiss index's own arrays) with huge pages, now. Contents are unchanged;
    returns whether the range was collapsed (False elsewhere, on an older kernel, or when the
    range holds no whole huge page)."""
    lo = -(-address // _HUGE_PAGE) * _HUGE_PAGE
    hi = (address + nbytes) // _HUGE_PAGE * _HUGE_PAGE
    if not sys.platform.startswith("linux") or hi <= lo:
        return False
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return False
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    madvise(lo, hi - lo, _MADV_HUGEPAGE)
    return madvise(lo, hi - lo, _MADV_COLLAPSE) == 0


def _as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"queries must have shape (Q, {dim}), got {np.shape(queries)}")
    return q


def _top_k_of(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` of one query's ``(scores, rows)``, descending, ties by row, padded."""
    out_s = np.full(k, -np.inf, dtype=np.float32)
    out_r = np.full(k, -1, dtype=np.int64)
    n = scores.shape[0]
    if n == 0 or k == 0:
        return out_s, out_r
    if n > k:
        part = np.argpartition(-scores, k - 1)[:k]
        scores, rows = scores[part], rows[part]
    order = np.lexsort((rows, -scores))
    m = order.shape[0]
    out_s[:m] = scores[order]
    out_r[:m] = rows[order]
    return out_s, out_r


def _allowed_rows(allowed: np.ndarray) -> np.ndarray:
    """Sorted int64 rows of a bool mask; its own ``rows`` when it carries them (a hard-filter
    mask built from the postings: no pass over the whole catalog)."""
    known = getattr(allowed, "rows", None)
    if known is not None:
        return np.asarray(known, dtype=np.int64)
    return np.flatnonzero(allowed).astype(np.int64)


def exact_search(
    vectors: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` inner product of ``queries`` ``(Q, D)`` against ``vectors`` ``(N, D)``.

    ``allowed`` is ``None`` (every row) or an ``(N,)`` bool mask. Ties are broken by the lower
    row. Returns ``(scores (Q, k) float32, rows (Q, k) int64)`` padded as the module says.
    """
    n, dim = vectors.shape
    q = _as_queries(queries, dim)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if allowed is not None:
        rows = np.flatnonzero(allowed)
        sub = vectors[rows]
    else:
        rows = np.arange(n, dtype=np.int64)
        sub = vectors
    all_scores = np.asarray(sub @ q.T, dtype=np.float32)  # (n_allowed, Q)
    out_s = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
    out_r = np.full((q.shape[0], k), -1, dtype=np.int64)
    for i in range(q.shape[0]):
        out_s[i], out_r[i] = _top_k_of(all_scores[:, i], rows, k)
    return out_s, out_r


class ExactBackend:
    """The oracle: exact inner-product search over ``vectors`` (often a read-only memmap)."""

    name = "exact"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    @classmethod
    def build(
        cls, vectors: np.ndarray, folder: Path, *, progress: bool = False, **params: Any
    ) -> ExactBackend:
        """Nothing to build: the vectors are the index. ``params`` must be empty."""
        if params:
            raise ValueError(f"the exact backend takes no parameters, got {sorted(params)}")
        return cls(vectors)

    @classmethod
    def load(cls, vectors: np.ndarray, folder: Path, params: dict[str, Any]) -> ExactBackend:
        return cls(vectors)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        return exact_search(self.vectors, queries, k, allowed)

    def score_rows(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        return np.asarray(self.vectors[np.asarray(rows, dtype=np.int64)] @ q, dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """Nothing to release: the vectors are memory-mapped."""


@dataclass(frozen=True)
class HNSWParams:
    """Parameters of the faiss HNSW backend (recorded in ``manifest.json``)."""

    #: graph degree (neighbours per node on the upper layers, 2 M on the base layer)
    M: int = 32
    #: candidate list size while building (quality vs build time)
    ef_construction: int = 100
    #: candidate list size while searching; raised to ``k`` (or more under a filter) when smaller
    ef_search: int = 128
    #: with a filter keeping fewer than this fraction of the items, search them exactly
    exact_below: float = 0.05
    #: adaptive efSearch: an unfiltered search for ``k <= RETRY_MAX_K`` rows whose
    #: ``min(k, 10)``-th cosine falls below :data:`RETRY_MARGIN` times the catalog's typical
    #: 10th-neighbour cosine (a query off the data manifold, e.g. query arithmetic, or a greedy
    #: descent stuck in the wrong region) is searched again with this efSearch (0: never)
    ef_retry: int = 1024

    def __post_init__(self) -> None:
        if self.M < 2 or self.ef_construction < 1 or self.ef_search < 1 or self.ef_retry < 0:
            raise ValueError(f"invalid HNSW parameters: {self}")
        if not 0.0 <= self.exact_below <= 1.0:
            raise ValueError(f"exact_below must be in [0, 1], got {self.exact_below}")


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
        self, q: np.ndarray, k: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = _allowed_rows(allowed)
        out_s = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        out_r = np.full((q.shape[0], k), -1, dtype=np.int64)
        for i in range(q.shape[0]):
            out_s[i], out_r[i] = _top_k_of(self.score_rows(q[i], rows), rows, k)
        return out_s, out_r

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        n, dim = self.vectors.shape
        q = _as_queries(queries, dim)
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        if k == 0 or n == 0:
            return (
                np.full((q.shape[0], k), -np.inf, np.float32),
                np.full((q.shape[0], k), -1, np.int64),
            )
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
            known = getattr(allowed, "rows", None)
            count = int(known.shape[0]) if known is not None else int(np.count_nonzero(allowed))
            fraction = count / n
            if count <= k or fraction < self.hnsw.exact_below:
                return self._exact_subset(q, k, allowed)
            bitmap = np.packbits(np.asarray(allowed, dtype=bool), bitorder="little")
            selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
            ef = max(self.hnsw.ef_search, k, math.ceil(2 * k / fraction))
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=min(ef, MAX_FILTERED_EF))
            scores, rows = self.index.search(q, k, params=params)
        rows = rows.astype(np.int64, copy=False)
        scores = np.where(rows < 0, -np.inf, scores).astype(np.float32, copy=False)
        return scores, rows


#: depths at which :func:`cosine_profile` records the typical cosine
PROFILE_DEPTHS = (100, 200, 400, 600, 800, 1200, 1600, 2048)


def cosine_profile(
    backend: Any, *, samples: int = 32, depths: tuple[int, ...] = PROFILE_DEPTHS, seed: int = 0
) -> dict[str, list[float]]:
    """The typical cosine at rank ``m`` of a catalog: for ``samples`` random rows used as
    queries, the median cosine of the ``m``-th nearest row, for each ``m`` in ``depths``.

    Stored in the manifest; the exact soft-filter top-k uses it to choose its first cosine
    depth (a speed choice only: the result never depends on it).
    """
    n = backend.vectors.shape[0]
    depths = tuple(m for m in depths if m <= n)
    if not depths or n == 0:
        return {"depths": [], "cosine": []}
    rng = np.random.default_rng(seed)
    rows = rng.choice(n, size=min(samples, n), replace=False)
    queries = np.asarray(backend.vectors[np.sort(rows)], dtype=np.float32)
    scores, _ = backend.search(queries, depths[-1])
    at = np.asarray(depths) - 1
    return {
        "depths": [int(m) for m in depths],
        "cosine": [round(float(c), 4) for c in np.median(scores[:, at], axis=0)],
    }


#: backend name -> class (the names stored in ``manifest.json``)
BACKENDS: dict[str, Any] = {
    "exact": ExactBackend,
    "faiss-hnsw": FaissHNSWBackend,
}
#: accepted spellings on the command line
BACKEND_ALIASES: dict[str, str] = {
    "exact": "exact",
    "faiss": "faiss-hnsw",
    "faiss-hnsw": "faiss-hnsw",
    "milvus": "milvus",
}


def resolve_backend(name: str) -> str:
    """``"faiss"`` / ``"faiss-hnsw"`` / ``"exact"`` / ``"milvus"`` -> the manifest name;
    ValueError otherwise."""
    try:
        return BACKEND_ALIASES[name]
    except KeyError:
        raise ValueError(
            f"unknown index backend {name!r}; choose one of: exact, faiss, milvus"
        ) from None


# the Milvus backend (stylesearch.index.milvus imports nothing from here at import time; pymilvus
# is imported only when a Milvus index is built or loaded)
from stylesearch.index.milvus import MilvusBackend  # noqa: E402

BACKENDS[MilvusBackend.name] = MilvusBackend
