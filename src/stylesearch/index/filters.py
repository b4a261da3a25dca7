"""The hard filter a search hands to the vector backends: which rows are allowed, and why.

:func:`~stylesearch.search.topk.hard_filter_mask` makes a :class:`RowFilter` from the metadata
postings; every search path and every backend's ``search(..., allowed=...)`` takes one (or
``None``: every row allowed). The embedded backends (exact, faiss) use its ``mask`` and its
``rows``. A server-side backend (Milvus) cannot be sent a mask of millions of rows; it turns
the words behind the filter into its own expression (``array_contains_all(words, [...]) and
array_contains_any(words, [group]) and not array_contains_any(words, [...])``) and checks its
answers against the mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RowFilter"]


@dataclass(frozen=True, eq=False)
class RowFilter:
    """The rows a search may return. Build it with :meth:`of_words` (a metadata filter) or
    :meth:`of_mask` (any set of rows)."""

    #: ``(N,)`` bool, the allowed rows
    mask: np.ndarray
    #: word ids a row's metadata must all have
    must: tuple[int, ...]
    #: word ids a row's metadata must not have
    must_not: tuple[int, ...]
    #: groups of word ids (a word and its synonyms) of which a row needs at least one each
    must_any: tuple[tuple[int, ...], ...]
    #: the allowed rows (sorted int64) when known without a pass over the mask (a ``must``
    #: filter reads them from the postings); ``None`` otherwise
    rows: np.ndarray | None
    #: True when ``mask`` is exactly the rows that match the words and are not deleted, so a
    #: backend holding no deleted row may filter by the words alone; False for
    #: :meth:`of_mask`, whose words are empty and say nothing
    by_words: bool

    @classmethod
    def of_words(
        cls,
        mask: np.ndarray,
        must: Iterable[int],
        must_not: Iterable[int],
        *,
        must_any: Iterable[Sequence[int]] = (),
        rows: np.ndarray | None = None,
    ) -> RowFilter:
        """The filter of a metadata query: ``mask`` = the rows whose metadata has every
        ``must`` word, a word of each ``must_any`` group and no ``must_not`` word, and that are
        not deleted; ``rows``: the same rows, sorted, when already at hand."""
        return cls(
            mask=np.asarray(mask, dtype=bool),
            must=tuple(int(w) for w in must),
            must_not=tuple(int(w) for w in must_not),
            must_any=tuple(tuple(int(w) for w in g) for g in must_any),
            rows=None if rows is None else np.asarray(rows, dtype=np.int64),
            by_words=True,
        )

    @classmethod
    def of_mask(cls, mask: np.ndarray) -> RowFilter:
        """The rows of an ``(N,)`` bool ``mask``, with no words behind them."""
        return cls(np.asarray(mask, dtype=bool), (), (), (), None, by_words=False)

    @property
    def count(self) -> int:
        """How many rows are allowed (from ``rows`` when known, else a pass over ``mask``)."""
        if self.rows is not None:
            return int(self.rows.shape[0])
        return int(np.count_nonzero(self.mask))

    def allowed_rows(self) -> np.ndarray:
        """The allowed rows, sorted int64: ``rows`` when known, else read from ``mask``."""
        if self.rows is not None:
            return self.rows
        return np.flatnonzero(self.mask).astype(np.int64)
