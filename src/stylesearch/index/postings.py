"""Word -> rows lists of an index folder, and the item -> words CSR they come from.

* metadata: each item's metadata word ids as a CSR (:func:`csr_from_bags`), and inverted, word
  -> sorted rows (:func:`invert_csr`), for hard filters;
* attribute lists: per word, the rows of the highest ``p_w`` sorted by ``p_w`` descending
  (:func:`posting_length`, :func:`top_rows_by_value`), with the column bounds; the exact
  soft-filter top-k reads a prefix of one wanted word's list. :func:`write_attribute_lists`
  writes them (the ``attr_postings_*.npy`` and ``attributes_max`` / ``_min`` files of
  :mod:`stylesearch.index.store`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "POSTING_MAX_FRACTION",
    "POSTING_MIN_FRACTION",
    "POSTING_MIN_VALUE",
    "csr_from_bags",
    "invert_csr",
    "posting_length",
    "top_rows_by_value",
    "write_attribute_lists",
]

#: each word's sorted attribute list holds its rows with p_w >= POSTING_MIN_VALUE, but at least
#: the top POSTING_MIN_FRACTION and at most the top POSTING_MAX_FRACTION of the catalog
POSTING_MIN_VALUE = 0.5
POSTING_MIN_FRACTION = 0.02
POSTING_MAX_FRACTION = 0.25


def csr_from_bags(bags: list[list[int]] | list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-item word-id lists -> ``(offsets (N + 1,) int64, words (nnz,) int32)``."""
    lengths = np.fromiter((len(b) for b in bags), dtype=np.int64, count=len(bags))
    offsets = np.zeros(len(bags) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    words = np.fromiter((w for b in bags for w in b), dtype=np.int32, count=int(offsets[-1]))
    return offsets, words


def invert_csr(
    offsets: np.ndarray, words: np.ndarray, n_words: int
) -> tuple[np.ndarray, np.ndarray]:
    """Item -> words CSR to word -> sorted rows CSR ``(offsets (V + 1,) int64, rows int32)``."""
    n = offsets.shape[0] - 1
    rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(offsets))
    order = np.lexsort((rows, words))
    counts = np.bincount(words, minlength=n_words)[:n_words]
    p_offsets = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(counts, out=p_offsets[1:])
    return p_offsets, rows[order].astype(np.int32, copy=False)


def top_rows_by_value(col: np.ndarray, length: int) -> tuple[np.ndarray, float]:
    """The ``length`` rows of ``col`` with the largest values, sorted by (value desc, row asc).

    Returns ``(rows int64, floor)``: ``floor`` is the largest value of a row left out (0.0 when
    every row is in), so every row not returned has ``col[row] <= floor``.
    """
    n = col.shape[0]
    col = np.asarray(col, dtype=np.float32)
    if length >= n:
        return np.lexsort((np.arange(n), -col)), 0.0
    part = np.argpartition(-col, length)  # position `length` holds the (length + 1)-th largest
    floor = float(col[part[length]])
    top = part[:length]
    return top[np.lexsort((top, -col[top]))], floor


def posting_length(
    col: np.ndarray,
    min_value: float = POSTING_MIN_VALUE,
    min_fraction: float = POSTING_MIN_FRACTION,
    max_fraction: float = POSTING_MAX_FRACTION,
) -> int:
    """Length of a word's sorted attribute list: its rows with ``p >= min_value``, clipped to
    ``[ceil(min_fraction N), ceil(max_fraction N)]`` rows."""
    n = col.shape[0]
    lo = min(n, int(np.ceil(min_fraction * n)))
    hi = min(n, max(lo, int(np.ceil(max_fraction * n))))
    return int(np.clip(np.count_nonzero(col >= min_value), lo, hi))


def write_attribute_lists(
    attributes: np.ndarray, folder: Path, postings: dict[str, float] | None = None
) -> int:
    """Write each word's sorted attribute list and the column bounds of ``attributes``
    ``(N, V)`` float16 (Fortran order: one contiguous column at a time) into ``folder``;
    ``postings`` overrides :func:`posting_length`'s limits. Returns the lists' total length.
    ValueError when a probability is outside [0, 1]."""
    vocab_size = attributes.shape[1]
    lengths = np.zeros(vocab_size, np.int64)
    rows_parts: list[np.ndarray] = []
    values_parts: list[np.ndarray] = []
    p_floor = np.zeros(vocab_size, np.float32)
    col_max = np.empty(vocab_size, np.float32)
    col_min = np.empty(vocab_size, np.float32)
    for w in range(vocab_size):  # one contiguous column at a time
        col16 = np.asarray(attributes[:, w])
        col = col16.astype(np.float32)
        if not np.all((col >= 0) & (col <= 1)):
            raise ValueError(f"attribute probabilities of word {w} are outside [0, 1]")
        col_max[w], col_min[w] = col.max(), col.min()
        lengths[w] = posting_length(col, **(postings or {}))
        rows, p_floor[w] = top_rows_by_value(col, int(lengths[w]))
        rows_parts.append(rows.astype(np.int32))
        values_parts.append(col16[rows])
    p_offsets = np.zeros(vocab_size + 1, np.int64)
    np.cumsum(lengths, out=p_offsets[1:])
    np.save(folder / "attr_postings_offsets.npy", p_offsets)
    np.save(folder / "attr_postings_rows.npy", np.concatenate(rows_parts))
    del rows_parts
    np.save(folder / "attr_postings_values.npy", np.concatenate(values_parts))
    del values_parts
    np.save(folder / "attr_postings_floor.npy", p_floor)
    np.save(folder / "attributes_max.npy", col_max)
    np.save(folder / "attributes_min.npy", col_min)
    return int(p_offsets[-1])
