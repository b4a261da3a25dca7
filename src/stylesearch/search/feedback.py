"""Relevance feedback: "more like this" / "less like this" item ids that move a query vector.

A query may name catalog items it likes (``like``) and items it rejects (``unlike``). Rocchio's
rule moves the query vector in the index's space (the unit vectors the index stores, with their
look part when the model has one)::

    q' = n(q + alpha * mean(v_like) - beta * mean(v_unlike))

``q``: the unit query vector every method builds first (docs/search.md "Methods and scores");
``v``: the stored unit vectors of the named items; ``n``: L2 normalisation. ``alpha``
(:data:`LIKE_WEIGHT`) and ``beta`` (:data:`UNLIKE_WEIGHT`) are the weights; a missing list adds
nothing. The moved vector is unit, so every backend and the exact soft-filter top-k work on it
unchanged, and the ranking of each method stays its own (``cos``, or ``((1 + cos) / 2)^g * p``).

Rejected items are also left out of the results: the searcher asks for ``k + len(unlike)``
results and drops the rejected rows (:func:`drop_rows`), which is exact (at most
``len(unlike)`` of the longer list are dropped). Liked items stay eligible.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from stylesearch.search.query import MAX_FEEDBACK_ITEMS, ItemRows, Query, QueryError
from stylesearch.search.topk import TopK

if TYPE_CHECKING:
    from stylesearch.index.store import Index

__all__ = [
    "LIKE_WEIGHT",
    "MAX_FEEDBACK_ITEMS",
    "UNLIKE_WEIGHT",
    "apply_feedback",
    "drop_rows",
    "move_query",
]

#: ``alpha``: weight of the mean liked vector
LIKE_WEIGHT = 0.5
#: ``beta``: weight of the mean rejected vector (measured on the demo: docs/results.md
#: "Less like this")
UNLIKE_WEIGHT = 0.75


def move_query(
    query: np.ndarray,
    like: np.ndarray,
    unlike: np.ndarray,
    like_weight: float = LIKE_WEIGHT,
    unlike_weight: float = UNLIKE_WEIGHT,
) -> np.ndarray:
    """``n(q + alpha mean(like) - beta mean(unlike))``.

    Args:
        query: ``(D,)`` the query vector (normalised here).
        like: ``(L, D)`` stored unit vectors of the liked items (L may be 0).
        unlike: ``(U, D)`` those of the rejected items (U may be 0).
        like_weight, unlike_weight: ``alpha``, ``beta`` (>= 0).

    Returns:
        ``(D,)`` float32 unit vector; ``query`` normalised when both lists are empty.

    Raises:
        ValueError: the moved vector is zero (e.g. a query equal to its only rejected item
            with ``beta = 1``), or the dimensions differ.
    """
    q = np.asarray(query, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(q))
    if not np.isfinite(norm) or norm <= 1e-12:
        raise ValueError("the query vector is zero")
    moved = q / norm
    for vectors, weight in ((like, like_weight), (unlike, -unlike_weight)):
        v = np.asarray(vectors, dtype=np.float64)
        if v.size == 0:
            continue
        v = v.reshape(-1, v.shape[-1])
        if v.shape[1] != moved.shape[0]:
            raise ValueError(f"item vectors have {v.shape[1]} dimensions, the query {q.shape[0]}")
        moved = moved + weight * v.mean(axis=0)
    norm = float(np.linalg.norm(moved))
    if not np.isfinite(norm) or norm <= 1e-6:
        raise ValueError("the query vector is zero after moving away from the rejected items")
    return (moved / norm).astype(np.float32)


def drop_rows(top: TopK, rows: list[int], k: int) -> TopK:
    """``top`` without ``rows`` (the rejected items), cut to its best ``k``."""
    keep = ~np.isin(top.rows, np.asarray(rows, dtype=np.int64))
    idx = np.flatnonzero(keep)[:k]
    return replace(
        top,
        rows=top.rows[idx],
        scores=top.scores[idx],
        cosines=top.cosines[idx],
        attribute_scores=top.attribute_scores[idx],
    )


def apply_feedback(index: Index, query: Query, q: np.ndarray, rows: ItemRows) -> np.ndarray:
    """``q`` moved towards ``query.like`` and away from ``query.unlike`` (:func:`move_query`
    on the index's stored vectors of their ``rows``, looked up by the searcher), with the
    query's weights; ``q`` itself without either.

    Raises:
        QueryError: a move that cancels the query out.
    """
    if not rows.like and not rows.unlike:
        return q
    try:
        return move_query(
            q,
            index.vectors[rows.like],
            index.vectors[rows.unlike],
            LIKE_WEIGHT if query.like_weight is None else query.like_weight,
            UNLIKE_WEIGHT if query.unlike_weight is None else query.unlike_weight,
        )
    except ValueError as exc:
        raise QueryError(str(exc)) from None
