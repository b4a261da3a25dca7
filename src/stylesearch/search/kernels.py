"""Compiled per-row loops of the exact soft-filter top-k (numba).

:func:`survivors` is the inner loop of :class:`stylesearch.search.topk.coarse.CoarseTopK`: for
each candidate row (an attribute-list entry, or a member of a cluster being scanned) it applies the
bounds from the cheapest to the dearest and keeps the rows whose score can still reach the k-th
best one, with their ``p`` computed exactly as the oracle computes it. :func:`list_bounds`
gives the bounds that steer the reading of the lists, and :func:`merge_best` keeps the running
top-k. In numpy each of these took a dozen calls over small arrays per list block; compiled,
the per-block cost is the work itself (mostly the random reads of attribute columns).

Bounds, for a row ``r`` of cluster ``c`` (every one an upper bound of ``S = c~^g p``):

1. ``u_c * v * prod_{j != lead} cap_jc``: the cluster's cosine bound, the row's value of the
   list word (``lead``; 1 without one) and the other words' per-cluster caps;
2. the caps replaced by the row's own factors, one word at a time (one column read each);
3. the row's own cone ``cos(max(0, angle(q, c) - a_r))``, rescaled, capped at ``u_cap``;
4. the exact ``p`` (float32, the words in the oracle's order) times the row's cone.

The float16 attribute values are read as their bits and mapped through a 65536-entry float32
table: exactly ``np.float16(x).astype(np.float32)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from stylesearch.index.coarse import COS_SLACK
from stylesearch.search.scoring import may_reach, needed_factor

__all__ = [
    "FLOAT16_TABLE",
    "compiled",
    "frozen",
    "list_bounds",
    "merge_best",
    "survivors",
    "warm_up",
]

#: float32 value of every float16 bit pattern (read-only, as every array passed in: see
#: :func:`frozen`)
FLOAT16_TABLE = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
FLOAT16_TABLE = FLOAT16_TABLE.astype(np.float32)
FLOAT16_TABLE.flags.writeable = False


def frozen(array: np.ndarray) -> np.ndarray:
    """A read-only view of ``array`` (no copy). numba compiles one version of a function per
    argument type, and a read-only array (a memory map) is another type than a writable one:
    passing every array read-only keeps it at one compilation per function."""
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


def compiled(function):
    """``numba.njit`` with numba's on-disk cache when it has a writable place for it (next to
    this module, or ``NUMBA_CACHE_DIR``, or the user's cache folder); without one (a read-only
    install and home), compiled anew in each process rather than failing at import."""
    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(nogil=True)(function)


#: the bound tests of :mod:`stylesearch.search.scoring`, compiled from their one definition
#: (numba's cache of a function here does not see edits to scoring.py: clear it after one)
_may_reach = compiled(may_reach)
_needed_factor = compiled(needed_factor)


@compiled
def survivors(
    rows,
    clusters,
    row_angles,
    lead,
    lead_values,
    attributes,
    words,
    wanted,
    caps,
    limits,
    u,
    angles,
    u_cap,
    power,
    s_k,
    scanned,
    removal_scale,
    allowed,
    table,
    out_rows,
    out_p,
):  # pragma: no cover - compiled; exercised through CoarseTopK's tests
    """Write into ``out_rows`` / ``out_p`` the candidates whose score bound reaches ``s_k``;
    return how many.

    Args:
        rows: ``(n,)`` candidate rows; ``clusters``: ``(n,)`` their clusters;
            ``row_angles``: ``(n,)`` float32 their angles to their centroids.
        lead: position in ``words`` of the word whose values ``lead_values`` (``(n,)``
            float16 bits, the rows' own values of that word) come with the rows; -1: none.
        attributes: ``(N, V)`` float16 bits of the attribute matrix (any order).
        words: ``(m,)`` query word ids, the wanted then the unwanted (the oracle's order);
            ``wanted``: ``(m,)`` bool.
        caps: ``(m, C)`` float64 per-cluster upper bound of each word's factor for the rows;
            ``limits``: ``(m,)`` a further bound of each word's factor (a wanted word's list's
            next value: every row not read in that list is below it), so a factor's bound in
            cluster ``c`` is ``min(caps[j, c], limits[j])``.
        u: ``(C,)`` float64 per-cluster bound of ``c~^g`` (already capped at ``u_cap``);
            ``angles``: ``(C,)`` float64 query-to-centroid angles (:meth:`query_angles`).
        u_cap: cap of every row's ``c~^g`` bound; ``power``: ``g``.
        s_k: the k-th best score so far (> 0).
        scanned: ``(C,)`` bool, clusters whose rows were all scored already (skipped).
        removal_scale: float32 ``r`` of an unwanted word's factor ``max(0, 1 - r p_w)``
            (``caps`` already hold it).
        allowed: ``(N,)`` bool hard-filter mask, or an empty array for none.
        table: :data:`FLOAT16_TABLE`.
        out_rows, out_p: ``(n,)`` outputs (int64, float32).
    """
    n = rows.shape[0]
    m = words.shape[0]
    has_allowed = allowed.shape[0] > 0
    thr = _needed_factor(s_k, 1.0)  # b >= thr: a bound b may reach s_k
    one = np.float32(1.0)
    zero = np.float32(0.0)
    # Each stage keeps its survivors by index without a branch per row (write, then advance
    # by the test's outcome), and the next stage reads its values for all of them before
    # testing any: the reads are a plain gather whose cache misses overlap, where a test right
    # after each read would make every miss wait for the one before (docs/performance.md).
    # 1. the cluster's bounds (one product per cluster, -1 for a scanned one) and the list
    # word's value
    n_clusters = u.shape[0]
    cluster_bound = np.empty(n_clusters)
    for c in range(n_clusters):
        b = u[c]
        for j in range(m):
            if j != lead:
                b *= min(caps[j, c], limits[j])
        cluster_bound[c] = -1.0 if scanned[c] else b
    idx = np.empty(n, np.int64)
    known = np.empty(n, np.float64)
    k = 0
    for e in range(n):
        v = np.float64(table[lead_values[e]]) if lead >= 0 else 1.0
        b = cluster_bound[clusters[e]]
        ok = (b >= 0.0) & (b * v >= thr)
        if has_allowed:
            ok = ok and allowed[rows[e]]
        idx[k] = e
        known[k] = v
        k += ok
    # 2. the other words' own factors in place of their caps, one word at a time (the wanted
    # words first: they prune the most), each read only for the rows still alive. Per word:
    # all its values read first (a plain gather: its cache misses overlap; a store whose
    # address waits on a read, as in a per-row test-and-keep, makes each miss wait for the one
    # before), then the test and the keep
    factors = np.empty((m, k), np.float32)
    if lead >= 0:
        for t in range(k):
            factors[lead, t] = table[lead_values[idx[t]]]
    for j in range(m):
        if j == lead:
            continue
        w = words[j]
        for t in range(k):
            factors[j, t] = table[attributes[rows[idx[t]], w]]
        if not wanted[j]:  # scoring.unwanted_factor's arithmetic (tests: bit for bit)
            for t in range(k):
                f32 = one - factors[j, t] * removal_scale
                factors[j, t] = f32 if f32 > zero else zero
        k2 = 0
        for t in range(k):
            c = clusters[idx[t]]
            f = known[t] * np.float64(factors[j, t])
            b = u[c] * f
            for i in range(j + 1, m):
                if i != lead:
                    b *= min(caps[i, c], limits[i])
            for i in range(m):
                factors[i, k2] = factors[i, t]
            idx[k2] = idx[t]
            known[k2] = f
            k2 += b >= thr
        k = k2
    # 3. the row's own cone, then 4. p exactly as the oracle computes it (float32, in order)
    n_out = 0
    for t in range(k):
        e = idx[t]
        gap = angles[clusters[e]] - np.float64(row_angles[e])
        ub = 1.0
        if gap > 0:
            ub = min(max((1.0 + math.cos(gap) + COS_SLACK) * 0.5, 0.0), 1.0)
            if power != 1.0:
                ub = ub**power
        ub = min(ub, u_cap)
        if known[t] * ub < thr:
            continue
        p = one
        for j in range(m):
            p = np.float32(p * factors[j, t])
        if _may_reach(np.float64(p), s_k, ub):
            out_rows[n_out] = rows[e]
            out_p[n_out] = p
            n_out += 1
    return n_out


@compiled
def list_bounds(u, caps, limits, n_lists, floors, scanned):  # pragma: no cover - compiled
    """The bounds that steer the threshold algorithm over the wanted words' lists.

    With ``cap_jc = min(caps[j, c], limits[j])`` (see :func:`survivors`; the first
    ``n_lists`` words are the wanted words whose lists are read, ``floors`` their floors),
    over the clusters not ``scanned``:

    * ``unread``: ``max_c u_c prod_j cap_jc``, the best score a row read in no list can have;
    * ``rest[i]``: ``max_c u_c prod_{j != i} cap_jc``, the most a row can add to word ``i``'s
      factor (so rows with ``p_i`` below ``s_k / rest[i]`` cannot win);
    * ``at_floor[i]``: ``max_c u_c prod_{j != i} cap_jc min(caps[i, c], floors[i])``, the
      best score of a row past the end of list ``i``.
    """
    m, n_clusters = caps.shape
    unread = -1.0
    rest = np.zeros(n_lists)
    at_floor = np.zeros(n_lists)
    cap = np.empty(m)
    for c in range(n_clusters):
        if scanned[c]:
            continue
        whole = u[c]
        for j in range(m):
            cap[j] = min(caps[j, c], limits[j])
            whole *= cap[j]
        unread = max(unread, whole)
        for i in range(n_lists):
            r = u[c]
            for j in range(m):
                if j != i:
                    r *= cap[j]
            rest[i] = max(rest[i], r)
            at_floor[i] = max(at_floor[i], r * min(caps[i, c], floors[i]))
    return unread, rest, at_floor


@compiled
def merge_best(rows, cos, p, scores, k, new_rows, new_cos, new_p, new_scores):  # pragma: no cover
    """The best ``k`` of a running top-k (``rows`` ... ``scores``: distinct rows, ordered by
    score descending then row ascending) and new scored rows (distinct among themselves);
    a new row already in the top-k is ignored. Returns the four merged arrays, in that order.
    """
    n = rows.shape[0]
    kth = scores[n - 1] if n >= k else -np.inf
    present = np.sort(rows)
    take = np.zeros(new_rows.shape[0], np.bool_)
    count = 0
    for t in range(new_rows.shape[0]):
        if new_scores[t] < kth:
            continue
        at = np.searchsorted(present, new_rows[t])
        if at < n and present[at] == new_rows[t]:
            continue
        take[t] = True
        count += 1
    all_rows = np.empty(n + count, np.int64)
    all_cos = np.empty(n + count, np.float32)
    all_p = np.empty(n + count, np.float32)
    all_scores = np.empty(n + count, np.float32)
    all_rows[:n] = rows
    all_cos[:n] = cos
    all_p[:n] = p
    all_scores[:n] = scores
    i = n
    for t in range(new_rows.shape[0]):
        if take[t]:
            all_rows[i] = new_rows[t]
            all_cos[i] = new_cos[t]
            all_p[i] = new_p[t]
            all_scores[i] = new_scores[t]
            i += 1
    # by row, then stably by score descending: (score desc, row asc), as the oracle ranks
    order = np.argsort(all_rows, kind="mergesort")
    order = order[np.argsort(-all_scores[order], kind="mergesort")][:k]
    return all_rows[order], all_cos[order], all_p[order], all_scores[order]


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) every function here for the argument
    types :mod:`stylesearch.search.topk` passes, so the first query does not pay for it
    (compiling takes seconds the first time; loading from the cache, a fraction of one)."""
    i32, i16 = frozen(np.zeros(1, np.int32)), frozen(np.zeros(1, np.int16))
    f32, f64 = frozen(np.zeros(1, np.float32)), frozen(np.zeros(1, np.float64))
    u16 = frozen(np.zeros(1, np.uint16))
    attributes = frozen(np.zeros((2, 2), np.uint16, order="F"))  # (N, V), Fortran order
    words, wanted = frozen(np.zeros(1, np.int64)), frozen(np.ones(1, bool))
    caps, flags = frozen(np.ones((1, 1))), frozen(np.zeros(1, bool))
    for lead in (-1, 0):
        survivors(
            i32, i16, f32, lead, u16, attributes, words, wanted, caps, f64, f64, f64, 1.0,
            1.0, 0.5, flags, np.float32(1.0), flags, FLOAT16_TABLE, np.empty(1, np.int64),
            np.empty(1, np.float32),
        )  # fmt: skip
    list_bounds(f64, caps, f64, 1, f64, flags)
    rows = np.zeros(0, np.int64)
    empty = np.zeros(0, np.float32)
    merge_best(rows, empty, empty, empty, 1, np.zeros(1, np.int64), *(np.ones(1, np.float32),) * 3)
