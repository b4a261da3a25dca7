"""Exact top-k for the soft-filter score, hard metadata filters, and the brute-force oracle.

When the index has a coarse partition (:mod:`stylesearch.index.coarse`: clusters with cosine
cones and per-cluster ``p`` maxima / minima, the default for every index written now),
:func:`soft_filter_topk` proves its answer with those per-cluster and per-row bounds plus a
threshold algorithm over the wanted words' sorted lists (:func:`_coarse_topk`); the algorithm
below is used for an index without one (or ``DeepeningConfig(use_coarse=False)``).

The soft-filter score ``S = c~ * p`` (:mod:`stylesearch.search.scoring`) can rank first an item
that is far down the cosine list (a likely red dress at cosine rank 500 beats 499 closer items
whose ``p`` is tiny), so re-ranking a fixed window of nearest vectors silently loses it.
:func:`soft_filter_topk` proves its answer with a threshold algorithm over two sorted sources:

* the **cosine source**: the backend's ``m`` nearest rows (every other row has ``c~ <= c_m``,
  the rescaled cosine of the ``m``-th);
* the **attribute source**: one wanted word ``a``'s sorted posting list (the index stores, per
  word, the rows of its highest ``p_w`` sorted by ``p_w`` descending, with ``floor``: every row
  not in the list has ``p_w <= floor``). After reading its first ``pos`` entries every unread
  row has ``p_a <= t`` (the next entry's value, or ``floor``).

Every row read from either source is scored exactly (a list row only when ``c_m * p`` can still
reach the k-th score ``s_k``: its ``p`` is computed first from the memory-mapped float16
columns, its cosine only if needed). A row in neither has
``S <= c_m * t * prod_{w != a} max factor_w``; once that is below ``s_k`` the answer is exact.

Steps: (0) seed ``s_k`` by scoring the head (``block`` entries) of every wanted word's list,
and choose the first cosine depth from the manifest's ``cosine_profile`` (the typical cosine at
ranks 100 ... 2048, measured at build time): the depth minimising the modelled search cost plus
the cost of the list prefix left to read at that depth's typical cosine (otherwise
``max(initial, 4 k)``). (1) Search the ``m`` nearest rows and score them. (2) If
``c_m * P_max < s_k`` (``P_max``: the product of per-word column maxima of ``p_w`` resp.
``1 - p_w``) stop. (3) Pick the wanted word whose list prefix ``{p_a >= s_k / (c_m * rest)}`` is
shortest (binary search; a list whose ``floor`` is not below that threshold cannot prove
anything) and read it in doubling blocks: each block raises ``s_k`` and so shortens the prefix
still to read; stop when the next value is below the threshold. (4) Before each block compare
costs (``DeepeningConfig``'s measured per-row costs): when scoring the rest of the prefix would
cost more than a deeper cosine search (the profile's best deeper depth, else ``m * growth``),
deepen instead and go on reading the same list where it stopped. (5) With no usable list (no
wanted word, or thresholds below every list's floor) deepen, unless computing ``p`` of every row
from the columns is cheaper; past ``max_depth`` compute it anyway and score the rows with
``c_m * p >= s_k`` (the full exact scan only when that is a quarter of the rows or more). Small
allowed sets (a selective hard filter) skip the sources: ``p`` of every allowed row first, the
``k`` likeliest scored, then the cosine of the rows whose ``p`` can still reach ``s_k``.

With the exact backend every step is exact, so the result equals brute force (ties broken by the
lower row, as the oracle does; bounds carry a relative slack :data:`BOUND_EPS` so float rounding
of two code paths cannot drop a tied row). With faiss, "every other row has ``c~ <= c_m``" holds
up to the graph's own recall at depth ``m``, while rows with a high ``p`` are found by the
attribute source whatever their cosine rank.

Hard filters (``must`` / ``must_not`` metadata words) become a boolean mask from the inverted
postings before any scoring; both sources then keep only the allowed rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stylesearch.index.filters import WordMask
from stylesearch.index.store import Index
from stylesearch.search.kernels import (
    FLOAT16_TABLE,
    frozen,
    list_bounds,
    merge_best,
    survivors,
)
from stylesearch.search.scoring import BOUND_EPS, rescale_cosine

__all__ = [
    "DeepeningConfig",
    "TopK",
    "attribute_probs",
    "hard_filter_mask",
    "hard_filter_topk",
    "soft_filter_topk",
]


@dataclass(frozen=True)
class DeepeningConfig:
    """Knobs of :func:`soft_filter_topk`: they change speed, never the result.

    The costs are single-thread measurements on the 2-core development machine
    (docs/performance.md); they only steer the choice between reading further down an attribute
    list and searching deeper by cosine.
    """

    #: first cosine depth is max(initial, 4 k)
    initial: int = 400
    #: cosine depth multiplier per deepening
    growth: float = 2.0
    #: deepest cosine search; past it, finish from the attribute columns
    max_depth: int = 2048
    #: first attribute block (entries); later blocks double (2048 rather than 512: fewer
    #: rounds of per-block work, measured CPU p50 -5 to -10 % at 100k and 1.5M items)
    block: int = 2048
    #: cost of the cosine source per row at depth 1000 (faiss HNSW: ~2 us / row); the cost of a
    #: search of depth m is modelled as ``search_us_per_row * m * sqrt(m / 1000)`` (measured:
    #: 0.5 ms at 400, 2 ms at 1000, 9 ms at 2500, 100k items)
    search_us_per_row: float = 2.0
    #: cost of scoring one candidate row exactly (vector gather + dot, ~0.1 us)
    score_us_per_row: float = 0.15
    #: cost of reading one list entry and its p (per word gathered)
    read_us_per_entry: float = 0.01
    #: cost of computing p of one row from the columns, per query word (the column fallback)
    column_us_per_row: float = 0.003
    #: allowed rows at most this fraction of the catalog (or 4 x the first depth): score them all
    scan_fraction: float = 0.05
    #: use the index's coarse partition (cluster cosine cones + per-cluster p bounds) when it has
    #: one: exact with every backend, no graph search (see :func:`_coarse_topk`)
    use_coarse: bool = True
    #: coarse path: rows scanned cluster by cluster (best bound first) before the attribute list
    coarse_rows: int = 1024
    #: coarse path: first take the backend's ``coarse_graph_depth`` nearest rows (0: none) and
    #: cap every other row's cosine bound at the last one's (exact with the exact backend, up to
    #: the graph's recall with faiss): far rows then need a higher ``p`` to be read. ``None``:
    #: ``graph_depth`` with a graph backend on ``graph_min_count`` rows or more, else 0
    #: (measured, docs/performance.md: at 1.5M items depth 600 cut the CPU p99 from ~30 ms to
    #: ~10 ms; at 100k the coarse bounds alone were faster)
    coarse_graph_depth: int | None = None
    graph_depth: int = 600
    graph_min_count: int = 500_000
    #: coarse path: clusters put in bound order up front (the rest sorted only when reached;
    #: a full sort of ~4k bounds cost ~0.2 ms a query and few clusters are ever scanned)
    cluster_head: int = 64

    def search_cost(self, m: int) -> float:
        """Modelled cost (us) of one cosine search of depth ``m``."""
        return self.search_us_per_row * m * float(np.sqrt(m / 1000.0))

    def __post_init__(self) -> None:
        if (
            self.initial < 1
            or self.growth <= 1
            or self.block < 1
            or self.max_depth < 1
            or self.cluster_head < 1
        ):
            raise ValueError(f"invalid DeepeningConfig: {self}")


@dataclass
class TopK:
    """Ranked rows with their score parts (all ``(n,)``, best first, ``n <= k``)."""

    rows: np.ndarray
    scores: np.ndarray
    cosines: np.ndarray
    attribute_scores: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)


def _rank(rows: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the best ``k`` by (score desc, row asc)."""
    if rows.shape[0] > k:
        # keep everything tied with the k-th score so the tie-break by row is exact
        kth = np.partition(-scores, k - 1)[k - 1]
        keep = np.flatnonzero(-scores <= kth)
    else:
        keep = np.arange(rows.shape[0])
    order = np.lexsort((rows[keep], -scores[keep]))
    return keep[order[:k]]


def _factor(col: np.ndarray, wanted: bool) -> np.ndarray:
    col = np.asarray(col, dtype=np.float32)
    return col if wanted else 1.0 - col


def attribute_probs(
    attributes: np.ndarray, rows: np.ndarray, add: list[int], remove: list[int]
) -> np.ndarray:
    """``p`` of ``rows`` for the word ids ``add`` / ``remove`` from an ``(N, V)`` matrix.

    One column gather per word, multiplied in the order ``add`` then ``remove`` in float32: the
    same arithmetic as the oracle's, so both give bit-identical ``p``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    attributes = np.asarray(attributes)  # a plain view of a memmap: no memmap per slice
    p = np.ones(rows.shape[0], dtype=np.float32)
    for w in add:
        p *= _factor(attributes[:, w][rows], True)
    for w in remove:
        p *= _factor(attributes[:, w][rows], False)
    return p


def _all_probs(attributes: np.ndarray, add: list[int], remove: list[int]) -> np.ndarray:
    """``p`` for every row, one contiguous column at a time (Fortran-ordered attributes)."""
    attributes = np.asarray(attributes)
    p = np.ones(attributes.shape[0], dtype=np.float32)
    for w in add:
        p *= _factor(attributes[:, w], True)
    for w in remove:
        p *= _factor(attributes[:, w], False)
    return p


def _full_scan_topk(
    vectors: np.ndarray,
    attributes: np.ndarray,
    query: np.ndarray,
    k: int,
    add: list[int],
    remove: list[int],
    *,
    soft: bool,
    allowed: np.ndarray | None = None,
    cosine_power: float = 1.0,
) -> TopK:
    """Score every (allowed) row and keep the best ``k``: the soft filter's last resort when no
    bound prunes enough. ``soft``: ``S = c~^g p`` (``g``: ``cosine_power``), else ``S = cos``.
    Tests judge it, like every other path, against :mod:`stylesearch.testing.oracle`."""
    rows = np.flatnonzero(allowed) if allowed is not None else np.arange(vectors.shape[0])
    sub = vectors if allowed is None else vectors[rows]  # no copy of the whole catalog
    cos = np.asarray(sub @ np.asarray(query, np.float32), dtype=np.float32)
    p = _all_probs(attributes, add, remove)[rows]
    scores = rescale_cosine(cos, cosine_power) * p if soft else cos
    pos = _rank(rows, scores, k)
    return TopK(rows[pos], scores[pos], cos[pos], p[pos], {"full_scan": True})


def hard_filter_mask(index: Index, must: list[int], must_not: list[int]) -> np.ndarray | None:
    """``(N,)`` bool: rows whose metadata has every ``must`` word and no ``must_not`` word, and
    that are not deleted (``index delete``); a :class:`~stylesearch.index.filters.WordMask`
    that keeps the words for server-side backends.

    ``None`` when there is no condition (every row allowed). With a ``must`` word the mask
    also carries its sorted allowed rows (``rows``, read from the postings: no pass over the
    catalog).
    """
    live = index.live_mask()
    if not must and not must_not:
        return None if live is None else WordMask.of(live, [], [])
    if not must:
        mask = np.ones(index.count, dtype=bool) if live is None else live.copy()
        for w in must_not:
            mask[index.rows_with_word(w)] = False
        return WordMask.of(mask, must, must_not)
    postings = sorted((index.rows_with_word(w) for w in must), key=len)
    rows = postings[0]
    for other in postings[1:]:  # both sorted: mark the rows, keep the other's marked ones
        # (linear in the postings; np.intersect1d sorted their concatenation: 43 ms for two
        # common words at 1.5M items)
        mark = np.zeros(index.count, dtype=bool)
        mark[rows] = True
        rows = other[mark[other]]
    rows = np.asarray(rows, dtype=np.int64)
    mask = np.zeros(index.count, dtype=bool)
    mask[rows] = True
    for w in must_not:
        mask[index.rows_with_word(w)] = False
    if live is not None:
        mask &= live
    return WordMask.of(mask, must, must_not, rows=rows[mask[rows]])


def hard_filter_topk(
    index: Index,
    query: np.ndarray,
    k: int,
    allowed: np.ndarray | None,
    config: DeepeningConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` by cosine among the ``allowed`` rows: ``(cosines, rows)``, best first.

    A selective filter (its rows known, at most ``scan_fraction`` of the catalog) on an index
    with a coarse partition is answered exactly without scoring every allowed row: the rows
    of the best-bounded clusters are scored first, then only the rows whose cone bound (the
    cluster's, then the row's own) reaches the k-th cosine. (Measured at 1.5M items: a filter
    keeping 4 % of the items took 10-14 ms scoring all of them.) Otherwise the backend
    searches (faiss: exact below its own ``exact_below``, the graph with a selector above).
    """
    cfg = config or DeepeningConfig()
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    known = getattr(allowed, "rows", None)
    coarse = getattr(index, "coarse", None)
    if known is None or coarse is None or known.shape[0] > cfg.scan_fraction * index.count:
        cos, rows = index.backend.search(q[None, :], k, allowed)
        keep = rows[0] >= 0
        return cos[0][keep], rows[0][keep]
    rows = np.asarray(known, dtype=np.int64)
    k = min(k, rows.shape[0])
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    first = min(rows.shape[0], max(4 * k, cfg.coarse_rows))
    if first < rows.shape[0]:
        angles = coarse.query_angles(q)
        ub = coarse.cosine_bounds(q, angles)[coarse.assign[rows]]
        top = np.argpartition(-ub, first - 1)[:first]
        cand, cos = rows[top], index.backend.score_rows(q, rows[top])
        kth = float(np.partition(cos, cos.shape[0] - k)[cos.shape[0] - k])
        rest = np.ones(rows.shape[0], dtype=bool)
        rest[top] = False
        rest &= ub >= kth - BOUND_EPS  # rows left out have cos <= ub < kth
        more = rows[rest]
        more = more[coarse.row_cosine_bounds(angles, more) >= kth - BOUND_EPS]
        if more.shape[0]:
            cand = np.concatenate([cand, more])
            cos = np.concatenate([cos, index.backend.score_rows(q, more)])
    else:
        cand, cos = rows, index.backend.score_rows(q, rows)
    pos = _rank(cand, cos, k)
    return cos[pos], cand[pos]


class _Best:
    """The running top-k of every row scored so far (score desc, row asc), deduplicated."""

    def __init__(self, k: int, power: float = 1.0) -> None:
        self.k = k
        #: the soft-filter score's cosine power g (``S = c~^g p``)
        self.power = power
        self.rows = np.zeros(0, np.int64)
        self.cos = np.zeros(0, np.float32)
        self.p = np.zeros(0, np.float32)
        self.scores = np.zeros(0, np.float32)

    @property
    def kth(self) -> float:
        """The k-th best score (-1 while fewer than k rows were scored)."""
        return float(self.scores[-1]) if self.scores.shape[0] >= self.k else -1.0

    def add(self, rows: np.ndarray, cos: np.ndarray, p: np.ndarray) -> None:
        """Score ``rows`` (distinct; their cosines and ``p``) and keep the best ``k`` of all."""
        if rows.shape[0] == 0:
            return
        # one dtype each (one numba compilation of merge_best; the callers' arrays are
        # writable and contiguous: their own results, never a memory map)
        rows = np.asarray(rows, dtype=np.int64)
        cos = np.asarray(cos, dtype=np.float32)
        p = np.asarray(p, dtype=np.float32)
        scores = np.asarray(rescale_cosine(cos, self.power) * p, dtype=np.float32)
        self.rows, self.cos, self.p, self.scores = merge_best(
            self.rows, self.cos, self.p, self.scores, self.k, rows, cos, p, scores
        )

    def result(self, stats: dict[str, Any]) -> TopK:
        return TopK(self.rows, self.scores, self.cos, self.p, stats)


def _beats(bound: float, s_k: float) -> bool:
    """True when a score upper bound is certainly below ``s_k`` (with the rounding slack)."""
    return s_k > 0 and bound * (1.0 + BOUND_EPS) + BOUND_EPS * 1e-2 < s_k


def _factor_max(index: Index, add: list[int], remove: list[int]) -> list[float]:
    """Per query word, the largest value its factor of ``p`` takes over the catalog."""
    return [float(index.attr_max[w]) for w in add] + [
        1.0 - float(index.attr_min[w]) for w in remove
    ]


class _ListReader:
    """Incremental reader of one wanted word's sorted attribute list (see the module doc)."""

    def __init__(self, index: Index, word: int, rest: float) -> None:
        self.word = word
        rows, values, self.floor = index.attribute_list(word)
        #: position of the list's first entry in the index's concatenated lists
        self.start = int(index.attr_post_offsets[word])
        # plain views of the memory maps: slicing a memmap object costs ~20 us a time
        self.rows, self.values = np.asarray(rows), np.asarray(values)
        self.length = self.rows.shape[0]
        self.rest = rest  # product of the other words' factor maxima
        self.pos = 0
        self.seeded = 0  # head entries already scored (the seed)

    @property
    def next_value(self) -> float:
        """Upper bound of ``p_word`` over the rows not read yet."""
        return float(self.values[self.pos]) if self.pos < self.length else self.floor

    def need(self, s_k: float, c_m: float) -> float:
        """The smallest ``p_word`` an unread row needs to reach ``s_k``."""
        denom = c_m * self.rest * (1.0 + BOUND_EPS)
        return (s_k - BOUND_EPS * 1e-2) / denom if denom > 0 else np.inf

    def usable(self, need: float) -> bool:
        """Whether reading a prefix can prove the bound (the rows left out are below ``need``)."""
        return self.floor < need

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


def _score_all(
    index: Index,
    q: np.ndarray,
    k: int,
    rows: np.ndarray,
    add: list[int],
    remove: list[int],
    best: _Best,
    c_bound: float = 1.0,
) -> int:
    """Score ``rows`` into ``best``: ``p`` first, the cosine only of rows with
    ``c_bound * p`` able to reach the k-th score (seeded with the k most likely rows).
    Returns the number of cosines computed."""
    p = attribute_probs(index.attributes, rows, add, remove)
    scored = 0
    if rows.shape[0] > 4 * k and (add or remove):
        seed = np.argpartition(-p, k - 1)[:k]
        best.add(rows[seed], index.backend.score_rows(q, rows[seed]), p[seed])
        scored += k
        if best.kth > 0:
            keep = p * (c_bound * (1.0 + BOUND_EPS)) + BOUND_EPS * 1e-2 >= best.kth
            rows, p = rows[keep], p[keep]
    best.add(rows, index.backend.score_rows(q, rows), p)
    return scored + rows.shape[0]


def soft_filter_topk(
    index: Index,
    query: np.ndarray,
    k: int,
    add: list[int],
    remove: list[int],
    *,
    allowed: np.ndarray | None = None,
    config: DeepeningConfig | None = None,
    cosine_power: float = 1.0,
) -> TopK:
    """Top-``k`` rows by ``S = c~^g * p`` (see the module docstring for the algorithm and its
    bound; ``g`` = ``cosine_power``, 1 by default: every bound on ``c~`` is raised to it).

    Args:
        index: the loaded index (backend, vectors, attribute matrix and sorted lists).
        query: ``(D,)`` float32 unit query vector.
        k: results wanted (fewer when fewer rows are allowed).
        add, remove: vocabulary ids of the wanted / unwanted words.
        allowed: optional ``(N,)`` bool hard-filter mask.
        config: deepening knobs and costs.
        cosine_power: ``g`` > 0; above 1 the cosine weighs more against ``p``.

    Returns:
        :class:`TopK`, whose ``stats`` say how it was found: ``path`` (``"bound"``, ``"list"``,
        ``"columns"``, ``"allowed"``, ``"full_scan"``), ``depth`` (last cosine depth),
        ``rounds`` (cosine searches), ``list_word`` / ``list_read`` (attribute entries read),
        ``rechecked`` (list or column rows scored exactly), ``full_scan``.
    """
    cfg = config or DeepeningConfig()
    n = index.count
    known = getattr(allowed, "rows", None)
    if allowed is None:
        n_allowed = n
    else:
        n_allowed = int(known.shape[0]) if known is not None else int(np.count_nonzero(allowed))
    k = min(k, n_allowed)
    empty = np.zeros(0, np.float32)
    stats: dict[str, Any] = {
        "path": "bound",
        "rounds": 0,
        "depth": 0,
        "list_word": None,
        "list_read": 0,
        "rechecked": 0,
        "full_scan": False,
    }
    if k <= 0:
        return TopK(np.zeros(0, np.int64), empty, empty, empty, stats)
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    if cosine_power <= 0:
        raise ValueError(f"cosine_power must be > 0, got {cosine_power}")
    best = _Best(k, cosine_power)
    if allowed is not None and n_allowed <= max(cfg.scan_fraction * n, 4 * cfg.initial):
        stats["path"] = "allowed"
        rows = known if known is not None else np.flatnonzero(allowed)
        stats["rechecked"] = _score_all(index, q, k, rows, add, remove, best)
        return best.result(stats)

    coarse = getattr(index, "coarse", None)
    if cfg.use_coarse and coarse is not None:
        return _coarse_topk(index, coarse, q, k, add, remove, allowed, best, stats, cfg, n_allowed)
    factor_max = _factor_max(index, add, remove)
    p_max = float(np.prod(factor_max)) if factor_max else 1.0
    readers = [
        _ListReader(index, w, float(np.prod(factor_max[:i] + factor_max[i + 1 :])))
        for i, w in enumerate(add)
    ]
    reader: _ListReader | None = None
    # seed s_k with the most likely rows: the head of each wanted word's list (TA's first step)
    for r in readers:
        r.seeded = min(cfg.block, r.length)
        head = np.asarray(r.rows[: r.seeded], dtype=np.int64)
        if allowed is not None:
            head = head[allowed[head]]
        p_head = attribute_probs(index.attributes, head, add, remove)
        best.add(head, index.backend.score_rows(q, head), p_head)
    survive = 1.0  # fraction of read list entries that needed a cosine (measured as we go)
    n_words = len(add) + len(remove)
    per_entry = cfg.read_us_per_entry * max(n_words - 1, 0) + cfg.score_us_per_row
    m = min(max(cfg.initial, 4 * k), n_allowed)
    column_cost = cfg.column_us_per_row * max(n_words, 1) * n
    profile = index.manifest.get("cosine_profile") or {}
    use_profile = allowed is None and bool(readers) and bool(profile.get("depths"))

    def choose_depth(s_k: float, above: int) -> int | None:
        """The profile depth > ``above`` minimising search cost + the list prefix left to read
        at that depth's typical cosine (``None``: no profile or no deeper depth)."""
        if not use_profile or s_k <= 0:
            return None
        costs = {}
        for depth, cos_typ in zip(profile["depths"], profile["cosine"], strict=True):
            if depth <= above or depth < 4 * k or depth > min(cfg.max_depth, n_allowed):
                continue
            c_typ = float(rescale_cosine(cos_typ, best.power))
            todo = [
                r.prefix(r.need(s_k, c_typ)) - (r.pos or r.seeded)
                for r in (readers if reader is None else [reader])
                if r.usable(r.need(s_k, c_typ))
            ]
            rest = per_entry * max(min(todo), 0) if todo else column_cost
            costs[depth] = cfg.search_cost(depth) + rest
        return min(costs, key=costs.__getitem__) if costs else None

    first = choose_depth(best.kth, 0)
    if first is not None:
        m = first
        stats["first_depth"] = m
    while True:
        stats["rounds"] += 1
        stats["depth"] = m
        cos, rows = index.backend.search(q[None, :], m, allowed)
        keep = rows[0] >= 0
        cos, rows = cos[0][keep], rows[0][keep]
        best.add(rows, cos, attribute_probs(index.attributes, rows, add, remove))
        if rows.shape[0] >= n_allowed:  # every allowed row seen
            return best.result(stats)
        # every unseen row has c~ <= c_m (up to the graph's recall); no bound if the backend
        # returned fewer rows than asked
        c_m = float(rescale_cosine(cos.min(), best.power)) if rows.shape[0] >= m else 1.0
        can_deepen = m < min(cfg.max_depth, n_allowed)
        m_next = min(int(m * cfg.growth), cfg.max_depth, n_allowed)
        if can_deepen:
            m_next = choose_depth(best.kth, m) or m_next
        while True:
            s_k = best.kth
            if _beats(c_m * p_max, s_k):
                if reader is not None and reader.pos:
                    stats["path"] = "list"
                return best.result(stats)
            if s_k <= 0:
                break
            if reader is None:
                usable = [r for r in readers if r.usable(r.need(s_k, c_m))]
                if not usable:
                    break
                reader = min(usable, key=lambda r: r.prefix(r.need(s_k, c_m)))
                reader.pos = reader.seeded
                stats["list_word"] = reader.word
            need = reader.need(s_k, c_m)
            if reader.next_value < need:  # no unread row of the list, nor any row outside it
                stats["path"] = "list"
                return best.result(stats)
            remaining = reader.prefix(need) - reader.pos
            if remaining <= 0:  # only the floor is left and it is not below need (safety)
                break
            per_entry = cfg.read_us_per_entry * max(n_words - 1, 0) + cfg.score_us_per_row * survive
            if can_deepen and reader.pos > 0 and remaining * per_entry > cfg.search_cost(m_next):
                break
            size = min(remaining, max(cfg.block, reader.pos))
            start, stop = reader.pos, reader.pos + size
            b_rows = np.asarray(reader.rows[start:stop], dtype=np.int64)
            reader.pos = stop
            stats["list_read"] = reader.pos
            # p in the oracle's order; the list's own values stand in for its word's column
            p = np.ones(size, np.float32)
            for w in add:
                col = (
                    reader.values[start:stop]
                    if w == reader.word
                    else index.attributes[:, w][b_rows]
                )
                p *= _factor(col, True)
            for w in remove:
                p *= _factor(index.attributes[:, w][b_rows], False)
            live = p * (c_m * (1.0 + BOUND_EPS)) + BOUND_EPS * 1e-2 >= s_k
            if allowed is not None:
                live &= allowed[b_rows]
            n_live = int(np.count_nonzero(live))
            survive = max(n_live / size, 0.01)
            if n_live:
                stats["rechecked"] += n_live
                b_rows, p = b_rows[live], p[live]
                best.add(b_rows, index.backend.score_rows(q, b_rows), p)
        # no usable list (or deepening is cheaper than reading on): deepen, unless computing p of
        # every row from the columns is cheaper than the deeper search
        if can_deepen and (reader is not None or cfg.search_cost(m_next) < column_cost):
            m = m_next
            continue
        # no list can prove the bound at the deepest cosine depth: finish from the columns
        s_k = best.kth
        rows = np.flatnonzero(allowed) if allowed is not None else None
        p = _all_probs(index.attributes, add, remove)
        if rows is not None:
            p = p[rows]
        else:
            rows = np.arange(n, dtype=np.int64)
        cand = p * (c_m * (1.0 + BOUND_EPS)) + BOUND_EPS * 1e-2 >= s_k
        rows, p = rows[cand], p[cand]
        if rows.shape[0] > n_allowed // 4:
            stats["path"] = "full_scan"
            stats["full_scan"] = True
            result = _full_scan_topk(
                index.vectors, index.attributes, q, k, add, remove, soft=True, allowed=allowed,
                cosine_power=best.power,
            )  # fmt: skip
            result.stats = stats
            return result
        stats["path"] = "columns"
        stats["rechecked"] += int(rows.shape[0])
        best.add(rows, index.backend.score_rows(q, rows), p)
        return best.result(stats)


def _coarse_topk(
    index: Index,
    coarse: Any,
    q: np.ndarray,
    k: int,
    add: list[int],
    remove: list[int],
    allowed: np.ndarray | None,
    best: _Best,
    stats: dict[str, Any],
    cfg: DeepeningConfig,
    n_allowed: int,
) -> TopK:
    """The soft-filter top-k over the coarse partition (:mod:`stylesearch.index.coarse`).

    Per cluster ``j``: ``u_j`` bounds the rescaled cosine of every member (the cone bound) and
    ``B_j = u_j * prod_{w+} pmax_jw * prod_{w-} (1 - pmin_jw)`` bounds its score. (1) Scan the
    clusters best ``B_j`` first, scoring their rows exactly (``p`` first, the cosine only when
    ``u_j p`` reaches the k-th score ``s_k``), until about ``coarse_rows`` rows are scanned;
    stop as soon as every unscanned ``B_j < s_k``. (2) Read the sorted list of the wanted word
    ``a`` whose needed prefix is shortest: a row of an unscanned cluster ``j`` left unread has
    ``p_a <= min(t, pmax_ja)`` (``t``: the next list value, or the list's floor), so its score is
    at most ``u_j min(t, pmax_ja) R_ja`` (``R_ja``: the other words' factors of ``B_j``); each
    read row is scored exactly when ``u_j p`` can reach ``s_k``. Stop when the largest such bound
    is below ``s_k``. (3) Without a usable list, go on scanning clusters (or, when most of the
    catalog is left, compute ``p`` of every row and score the rows with ``u_j p >= s_k``).
    Every bound is exact, so the result is exact with any backend.

    The per-row work (the bounds of a cluster's members or a list block, ``p``, the bounds
    steering the lists, the running top-k) runs in compiled loops
    (:mod:`stylesearch.search.kernels`); the exact cosines are the backend's ``score_rows``.
    """
    stats["path"] = "coarse"
    stats["clusters"] = 0
    n_clusters = coarse.centroids.shape[0]
    angles = coarse.query_angles(q)
    u = rescale_cosine(coarse.cosine_bounds(q, angles), best.power)  # (C,) c~ bound

    u_cap = 1.0
    depth = cfg.coarse_graph_depth
    if depth is None:
        graph = index.backend.name != "exact" and index.count >= cfg.graph_min_count
        depth = cfg.graph_depth if graph else 0
    m = min(depth, n_allowed)
    if m > 0:
        cos, rows = index.backend.search(q[None, :], m, allowed)
        keep = rows[0] >= 0
        cos, rows = cos[0][keep], rows[0][keep]
        best.add(rows, cos, attribute_probs(index.attributes, rows, add, remove))
        stats["rounds"], stats["depth"] = 1, m
        if rows.shape[0] >= n_allowed:
            return best.result(stats)
        if rows.shape[0] >= m:  # every other row has c~ <= that of the m-th
            c_cap = float(rescale_cosine(cos.min(), best.power))
            u_cap = min(1.0, c_cap * (1.0 + BOUND_EPS) + 1e-6)
            u = np.minimum(u, u_cap)

    def u_rows(rows: np.ndarray) -> np.ndarray:
        """Per-row bound of the rescaled cosine (the row's own cone, within the cluster's)."""
        ub = rescale_cosine(coarse.row_cosine_bounds(angles, rows), best.power)
        return np.minimum(ub, u_cap)

    add_max = [np.asarray(coarse.pmax[:, w], dtype=np.float64) for w in add]
    rem_max = [1.0 - np.asarray(coarse.pmin[:, w], dtype=np.float64) for w in remove]
    factors = np.ones(n_clusters)
    for f in add_max + rem_max:
        factors = factors * f
    bound = u * factors  # B_j
    # clusters by bound, best first: the best cluster_head now, the rest when reached
    head = min(n_clusters, cfg.cluster_head)
    order = np.argpartition(-bound, head - 1)[:head] if head < n_clusters else np.arange(head)
    order = order[np.lexsort((order, -bound[order]))]
    scanned = np.zeros(n_clusters, dtype=bool)
    offsets = coarse.offsets
    sizes = np.diff(offsets)

    if coarse.list_cluster is None:  # a partition loaded on its own: align it once
        coarse.attach_lists(index.attr_post_rows)
    list_cluster, list_angle = coarse.list_cluster, coarse.list_angle

    # the compiled loop's arguments (kernels.survivors): the words in the oracle's order, each
    # word's per-cluster factor cap (a wanted word's is lowered as its list is read), the
    # attribute matrix as float16 bits
    words = frozen(np.asarray(add + remove, dtype=np.int64))
    wanted = frozen(np.arange(words.shape[0]) < len(add))
    word_caps = np.empty((words.shape[0], n_clusters))
    for i, f in enumerate(add_max + rem_max):
        word_caps[i] = f
    word_caps = frozen(word_caps)
    limits = np.ones(words.shape[0])  # lowered to each wanted word's list's next value
    # read-only views (one numba compilation per function); those of `limits` and `scanned`
    # see the updates made to them during the query
    limits_view, scanned_view = frozen(limits), frozen(scanned)
    attr_bits = frozen(np.asarray(index.attributes).view(np.uint16))
    allowed_arr = frozen(np.zeros(0, bool) if allowed is None else np.asarray(allowed, bool))
    u64, angles64 = frozen(np.asarray(u, dtype=np.float64)), frozen(angles)

    def score_survivors(
        rows: np.ndarray,
        cl: np.ndarray,
        ang: np.ndarray,
        lead: int = -1,
        lead_values: np.ndarray | None = None,
    ) -> None:
        """Score exactly the ``rows`` (clusters ``cl``, angles ``ang``) whose bounds reach s_k."""
        s_k = best.kth
        if s_k <= 0:  # no k-th score yet: every row not scanned and allowed
            keep = ~scanned[cl]
            if allowed is not None:
                keep &= allowed_arr[rows]
            rows = np.asarray(rows[keep], dtype=np.int64)
            p = attribute_probs(index.attributes, rows, add, remove)
        else:
            out_rows = np.empty(rows.shape[0], np.int64)
            out_p = np.empty(rows.shape[0], np.float32)
            bits = np.zeros(0, np.uint16) if lead_values is None else lead_values.view(np.uint16)
            n_out = survivors(
                frozen(rows), frozen(cl), frozen(ang), lead, frozen(bits), attr_bits, words,
                wanted, word_caps, limits_view, u64, angles64, u_cap, float(best.power), s_k,
                scanned_view, allowed_arr, FLOAT16_TABLE, out_rows, out_p,
            )  # fmt: skip
            rows, p = out_rows[:n_out], out_p[:n_out]
        if rows.shape[0]:
            stats["rechecked"] += int(rows.shape[0])
            best.add(rows, index.backend.score_rows(q, rows), p)

    def scan(j: int) -> None:
        rows = coarse.members(j)
        stats["clusters"] += 1
        if rows.shape[0]:
            cl = np.full(rows.shape[0], j, dtype=list_cluster.dtype)
            score_survivors(rows, cl, coarse.angle[rows])
        scanned[j] = True

    pos = 0  # next position in `order`
    scanned_rows = 0

    def unscanned_max() -> float:
        nonlocal pos, order
        while True:
            while pos < order.shape[0] and scanned[order[pos]]:
                pos += 1
            if pos < order.shape[0] or order.shape[0] == n_clusters:
                return float(bound[order[pos]]) if pos < n_clusters else -1.0
            order, pos = np.argsort(-bound, kind="stable"), 0  # the head is used up: all

    # (1) the best clusters
    while True:
        b_next = unscanned_max()
        if b_next < 0 or _beats(b_next, best.kth):
            return best.result(stats)
        if scanned_rows >= cfg.coarse_rows and best.kth > 0:
            break
        j = int(order[pos])
        scan(j)
        scanned_rows += int(sizes[j])

    # (2) the wanted words' sorted lists, threshold-algorithm style: a row of an unscanned
    # cluster j not read in any list has p_i <= min(t_i, pmax_ji) for every wanted word i
    # (t_i: list i's next value, or its floor once read to the end)
    readers = [_ListReader(index, w, 1.0) for w in add]
    floors = frozen(np.asarray([r.floor for r in readers], dtype=np.float64))

    def read_block(i: int, size: int) -> None:
        """Score the next ``size`` entries of list ``i`` whose bound can still reach s_k (the
        list's value and the other words' caps, then their own factors, then the row's cone,
        then ``p``: :func:`~stylesearch.search.kernels.survivors`)."""
        reader = readers[i]
        start, stop = reader.pos, min(reader.pos + size, reader.length)
        reader.pos = stop
        stats["list_read"] += stop - start
        limits[i] = reader.next_value  # every row left unread in list i is below it
        g0, g1 = reader.start + start, reader.start + stop
        score_survivors(
            reader.rows[start:stop], list_cluster[g0:g1], list_angle[g0:g1], i,
            reader.values[start:stop],
        )  # fmt: skip

    if readers:
        stats["path"] = "coarse+list"
        for i in range(len(readers)):  # seed s_k with the likeliest rows: every list's head
            read_block(i, cfg.block)
        while True:
            s_k = best.kth
            b_next = unscanned_max()
            if b_next < 0 or _beats(b_next, s_k):
                return best.result(stats)
            unread, rest, at_floor = list_bounds(
                u64, word_caps, limits_view, len(add), floors, scanned_view
            )
            if _beats(unread, s_k):
                return best.result(stats)
            # the list that proves the bound alone with the shortest prefix left to read (the
            # other words capped by their lists' next values and the clusters' maxima), else
            # the one closest to its end (its floor then caps every unread row); blocks double
            # but never pass the prefix the current s_k needs
            best_i, best_len = -1, np.inf
            for i, r in enumerate(readers):
                if r.pos >= r.length or s_k <= 0 or not _beats(float(at_floor[i]), s_k):
                    continue
                top = float(rest[i]) * (1.0 + BOUND_EPS)
                need = (s_k - BOUND_EPS * 1e-2) / top if top > 0 else np.inf
                todo = r.prefix(need) - r.pos
                if todo < best_len:
                    best_i, best_len = i, todo
            if best_i < 0:
                left = [(r.length - r.pos, i) for i, r in enumerate(readers) if r.pos < r.length]
                if not left:
                    break  # every list read to its end and the bound still stands
                best_len, best_i = min(left)
            r = readers[best_i]
            read_block(best_i, int(max(1, min(best_len, max(cfg.block, r.pos)))))

    # (3) no usable list: the clusters that can still reach s_k, or every row's p when they
    # hold most of the catalog
    open_rows = int(sizes[~scanned & (bound * (1.0 + BOUND_EPS) >= best.kth)].sum())
    if open_rows <= index.count // 4:
        stats["path"] = "coarse+scan"
        while True:
            b_next = unscanned_max()
            if b_next < 0 or _beats(b_next, best.kth):
                return best.result(stats)
            scan(int(order[pos]))
    stats["path"] = "coarse+columns"
    p = _all_probs(index.attributes, add, remove)
    rows = np.flatnonzero(~scanned[coarse.assign])
    if allowed is not None:
        rows = rows[allowed[rows]]
    p = p[rows]
    ub = u_rows(rows)
    s_k = best.kth
    cand = p * (ub * (1.0 + BOUND_EPS)) + BOUND_EPS * 1e-2 >= s_k
    rows, p = rows[cand], p[cand]
    stats["rechecked"] += int(rows.shape[0])
    if rows.shape[0]:
        best.add(rows, index.backend.score_rows(q, rows), p)
    return best.result(stats)
