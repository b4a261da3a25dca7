"""The exact backend: a numpy matrix product over the memory-mapped ``vectors.npy``.

It is the oracle every other backend is tested against (STYLE.md habit 4); O(N D) per query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stylesearch.index.backends.base import (
    AddedRows,
    as_queries,
    empty_results,
    register_backend,
    score_rows_exact,
    top_k_of,
)
from stylesearch.index.filters import RowFilter

__all__ = ["ExactBackend", "exact_search"]


def exact_search(
    vectors: np.ndarray, queries: np.ndarray, k: int, allowed: RowFilter | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` inner product of ``queries`` ``(Q, D)`` against ``vectors`` ``(N, D)``.

    ``allowed`` is ``None`` (every row) or a :class:`~stylesearch.index.filters.RowFilter`
    (its ``mask`` is read). Ties are broken by the lower row. Returns ``(scores (Q, k) float32,
    rows (Q, k) int64)`` padded as :mod:`stylesearch.index.backends.base` says.
    """
    n, dim = vectors.shape
    q = as_queries(queries, dim, k)
    if allowed is not None:
        rows = np.flatnonzero(allowed.mask)
        sub = vectors[rows]
    else:
        rows = np.arange(n, dtype=np.int64)
        sub = vectors
    all_scores = np.asarray(sub @ q.T, dtype=np.float32)  # (n_allowed, Q)
    out_s, out_r = empty_results(q.shape[0], k)
    for i in range(q.shape[0]):
        out_s[i], out_r[i] = top_k_of(all_scores[:, i], rows, k)
    return out_s, out_r


@register_backend
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

    @classmethod
    def extend(
        cls, vectors: np.ndarray, folder: Path, params: dict[str, Any], added: AddedRows
    ) -> ExactBackend:
        """``index add``: nothing to extend, the vectors are the index."""
        return cls(vectors)

    def search(
        self, queries: np.ndarray, k: int, allowed: RowFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        return exact_search(self.vectors, queries, k, allowed)

    def score_rows(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return score_rows_exact(self.vectors, query, rows)

    def params(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """Nothing to release: the vectors are memory-mapped."""
