"""Incremental reading of one wanted word's sorted attribute list.

The index stores, per word, the rows of its highest ``p_w`` sorted by ``p_w`` descending, with a
``floor``: every row not in the list has ``p_w <= floor``. After reading the first ``pos``
entries every unread row has ``p_w <=`` :attr:`ListReader.next_value` (the next entry's value,
or the floor once the list is read to its end).
"""

from __future__ import annotations

import numpy as np

from stylesearch.index.store import Index

__all__ = ["ListReader"]


class ListReader:
    """Incremental reader of one wanted word's sorted attribute list."""

    def __init__(self, index: Index, word: int) -> None:
        self.word = word
        rows, values, self.floor = index.attribute_list(word)
        #: position of the list's first entry in the index's concatenated lists
        self.start = int(index.attr_post_offsets[word])
        # plain views of the memory maps: slicing a memmap object is slow
        self.rows, self.values = np.asarray(rows), np.asarray(values)
        self.length = self.rows.shape[0]
        self.pos = 0

    @property
    def next_value(self) -> float:
        """Upper bound of ``p_word`` over the rows not read yet."""
        return float(self.values[self.pos]) if self.pos < self.length else self.floor

    def prefix(self, need: float) -> int:
        """Entries with ``p_word >= need`` (their count from the top of the list)."""
        # binary search of the descending float16 values (no per-query copy of the list)
        need32 = float(np.float32(need))
        lo, hi = 0, self.length
        values = self.values
        while lo < hi:
            mid = (lo + hi) // 2
            if float(values[mid]) >= need32:
                lo = mid + 1
            else:
                hi = mid
        return lo
