"""Keeping an index warm in memory: huge pages for the backends' own arrays, populated read-only
maps for the index folder's ``.npy`` files.

A query reads thousands of random rows of the vectors, the graph and the attribute matrix. With
4 KB pages nearly each one misses the TLB, and on a fresh memory map each first touch of a page
is a page fault. :func:`huge_pages` moves anonymous memory (a faiss index's vectors and
neighbour lists) onto 2 MB pages; :func:`mapped` maps a file's pages at load instead of on a
query's first touch. Measured in ``benchmarks/memory_warmth.py`` and
``benchmarks/topk_micro.py`` (docs/performance.md).
"""

from __future__ import annotations

import ctypes
import mmap
import sys
from pathlib import Path

import numpy as np

__all__ = ["huge_pages", "mapped"]

#: Linux madvise advice: back a range with 2 MB pages (MADV_HUGEPAGE, honoured when the system's
#: transparent huge pages are "madvise" or "always"), and collapse it into them now instead of
#: some time later (MADV_COLLAPSE, kernel 6.1+)
_MADV_HUGEPAGE, _MADV_COLLAPSE = 14, 25
_HUGE_PAGE = 2 << 20
#: Linux's madvise(MADV_POPULATE_READ) (kernel 5.14+; Python's mmap module names it from 3.12);
#: elsewhere only the read-ahead hint
_MADV_POPULATE_READ = getattr(
    mmap, "MADV_POPULATE_READ", 22 if sys.platform.startswith("linux") else None
)


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


def mapped(path: Path, populate: bool = False) -> np.ndarray:
    """A read-only memory map of an ``.npy`` file, as a plain ndarray view.

    ``populate``: map every page now (the file's pages are read into the page cache and the
    process's page table), so no query pays the first-touch page faults of a random access: the
    load pays them once instead of the first queries (docs/performance.md).
    Falls back to a read-ahead hint where the kernel lacks it; the pages stay reclaimable file
    cache either way.
    """
    array = np.load(path, mmap_mode="r")
    raw = getattr(array, "_mmap", None)
    if populate and raw is not None and hasattr(raw, "madvise"):
        for advice in (_MADV_POPULATE_READ, getattr(mmap, "MADV_WILLNEED", None)):
            if advice is None:
                continue
            try:
                raw.madvise(advice)
                break
            except OSError:  # an older kernel: the next, weaker advice
                continue
    return np.asarray(array)
