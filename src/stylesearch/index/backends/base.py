"""What every vector backend shares: the protocol, the HNSW parameters, the result helpers and
the registry of backends by the name the manifest records.

Every backend answers the same question, :meth:`VectorBackend.search`: for each query row, the
``k`` catalog rows with the largest inner product (= cosine, all vectors are L2-normalised),
best first, among the rows of ``allowed``: ``None`` (every row) or a
:class:`~stylesearch.index.filters.RowFilter`, the hard filter's rows (its ``mask``, its sorted
``rows`` when known) and the metadata words behind them (a backend that filters on its server,
Milvus, sends the words and checks the answers against the mask).

:meth:`VectorBackend.score_rows` gives the exact inner products of one query with given rows
(the exact soft-filter top-k scores its attribute candidates with it); each backend scores with
the same arithmetic as its search, so a row scored both ways gets the same cosine.

Results: ``(scores, rows)``, each ``(Q, k)``: ``scores`` float32 inner products, descending;
``rows`` int64 row numbers. When fewer than ``k`` rows are allowed the rows are padded with ``-1``
and the scores with ``-inf``.

Besides the protocol, each backend class has three class methods, called by
:mod:`stylesearch.index.store` and :mod:`stylesearch.index.update`: ``build(vectors, folder,
*, progress, **params)`` writes its files into a new index folder, ``load(vectors, folder,
params)`` opens them, and ``extend(vectors, folder, params, added)`` (``index add``) writes
into ``folder`` the backend of ``added.old_folder``'s index with rows ``added.start:`` of
``vectors`` added (:class:`AddedRows`).

This module imports no backend: each backend module registers its class here
(:func:`register_backend`) and :mod:`stylesearch.index.backends` imports them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from stylesearch.index.filters import RowFilter

__all__ = [
    "AddedRows",
    "BACKENDS",
    "BACKEND_ALIASES",
    "HNSWParams",
    "VectorBackend",
    "as_queries",
    "empty_results",
    "register_backend",
    "resolve_backend",
    "score_rows_exact",
    "top_k_of",
]


@runtime_checkable
class VectorBackend(Protocol):
    """What the search layer needs from a vector index."""

    #: backend name recorded in the manifest ("exact", "faiss-hnsw", "milvus")
    name: str
    #: ``(N, D)`` float32, L2-normalised rows (the catalog vectors, row = item)
    vectors: np.ndarray

    def search(
        self, queries: np.ndarray, k: int, allowed: RowFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows per query by inner product among the ``allowed`` rows (``None``:
        every row; see the module docstring)."""
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


@dataclass(frozen=True)
class HNSWParams:
    """Parameters of an HNSW graph (the faiss backend; Milvus uses all but ``ef_retry``),
    recorded in ``manifest.json``."""

    #: graph degree (neighbours per node on the upper layers, 2 M on the base layer)
    M: int = 32
    #: candidate list size while building (quality vs build time)
    ef_construction: int = 100
    #: candidate list size while searching; raised to ``k`` (or more under a filter) when smaller
    ef_search: int = 128
    #: with a filter keeping fewer than this fraction of the items, search them exactly
    exact_below: float = 0.05
    #: adaptive efSearch (faiss): an unfiltered search for ``k <= RETRY_MAX_K`` rows whose
    #: ``min(k, 10)``-th cosine falls below ``RETRY_MARGIN`` times the catalog's typical
    #: 10th-neighbour cosine (a query off the data manifold, e.g. query arithmetic, or a greedy
    #: descent stuck in the wrong region) is searched again with this efSearch (0: never);
    #: see :mod:`stylesearch.index.backends.faiss_hnsw`
    ef_retry: int = 1024

    def __post_init__(self) -> None:
        if self.M < 2 or self.ef_construction < 1 or self.ef_search < 1 or self.ef_retry < 0:
            raise ValueError(f"invalid HNSW parameters: {self}")
        if not 0.0 <= self.exact_below <= 1.0:
            raise ValueError(f"exact_below must be in [0, 1], got {self.exact_below}")


@dataclass(frozen=True)
class AddedRows:
    """What ``extend`` (``index add``) adds to an index: rows ``start:`` of the new vectors, on
    top of the index at ``old_folder`` (rows ``:start``)."""

    #: the first new row (= the old index's row count)
    start: int
    #: the folder of the index being extended
    old_folder: Path
    #: the new rows' metadata words as CSR ``(offsets, words)``, offsets counting from ``start``
    new_metadata: tuple[np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------- result helpers


def as_queries(queries: np.ndarray, dim: int, k: int) -> np.ndarray:
    """``queries`` as a C-contiguous float32 ``(Q, dim)`` matrix; ValueError for another shape
    or a negative ``k``."""
    q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"queries must have shape (Q, {dim}), got {np.shape(queries)}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return q


def empty_results(n_queries: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, rows)`` of ``n_queries`` queries holding only padding (-inf, -1)."""
    return (
        np.full((n_queries, k), -np.inf, dtype=np.float32),
        np.full((n_queries, k), -1, dtype=np.int64),
    )


def top_k_of(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
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


def score_rows_exact(vectors: np.ndarray, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Inner products ``(len(rows),)`` float32 of one query with ``vectors[rows]`` (numpy)."""
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    return np.asarray(vectors[np.asarray(rows, dtype=np.int64)] @ q, dtype=np.float32)


# ---------------------------------------------------------------------------- the registry

#: backend name -> class (the names stored in ``manifest.json``), in registration order
BACKENDS: dict[str, Any] = {}
#: accepted spellings on the command line
BACKEND_ALIASES: dict[str, str] = {
    "exact": "exact",
    "faiss": "faiss-hnsw",
    "faiss-hnsw": "faiss-hnsw",
    "milvus": "milvus",
}


def register_backend(cls: Any) -> Any:
    """Record a backend class under its ``name`` (each backend module calls it once)."""
    BACKENDS[cls.name] = cls
    return cls


def resolve_backend(name: str) -> str:
    """``"faiss"`` / ``"faiss-hnsw"`` / ``"exact"`` / ``"milvus"`` -> the manifest name;
    ValueError otherwise."""
    try:
        return BACKEND_ALIASES[name]
    except KeyError:
        raise ValueError(
            f"unknown index backend {name!r}; choose one of: exact, faiss, milvus"
        ) from None
