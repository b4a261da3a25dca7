"""Row masks that remember the metadata words they were made from.

A hard filter reaches the vector backends as an ``(N,)`` bool mask of the allowed rows (the
exact and faiss backends use the mask itself). A server-side backend (Milvus) cannot be sent a
mask of millions of rows; it turns the words behind the mask into its own filter expression
(``array_contains_all(words, [...]) and array_contains_any(words, [group]) and not
array_contains_any(words, [...])``) and checks its
answers against the mask. :class:`WordMask` is that mask: a plain bool array for everyone else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["WordMask"]


class WordMask(np.ndarray):
    """An ``(N,)`` bool array = rows whose metadata has every ``must`` word id and no
    ``must_not`` word id, and that are not deleted. Slicing or arithmetic gives plain arrays'
    behaviour; only the object made by :meth:`of` carries the words."""

    must: tuple[int, ...]
    must_not: tuple[int, ...]
    #: groups of word ids (a word and its synonyms) of which a row needs at least one each
    must_any: tuple[tuple[int, ...], ...]
    #: the allowed rows (sorted int64) when known without a pass over the mask (a ``must``
    #: filter reads them from the postings); backends may use them; ``None`` otherwise
    rows: np.ndarray | None

    @classmethod
    def of(
        cls,
        mask: np.ndarray,
        must: list[int],
        must_not: list[int],
        *,
        rows: np.ndarray | None = None,
        must_any: list[tuple[int, ...]] | None = None,
    ) -> WordMask:
        out = np.asarray(mask, dtype=bool).view(cls)
        out.must = tuple(int(w) for w in must)
        out.must_not = tuple(int(w) for w in must_not)
        out.must_any = tuple(tuple(int(w) for w in g) for g in must_any or ())
        out.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        return out

    def __array_finalize__(self, obj: Any) -> None:
        # views and results derived from a WordMask say nothing about words (nor rows)
        self.must = ()
        self.must_not = ()
        self.must_any = ()
        self.rows = None
