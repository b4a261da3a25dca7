"""The soft-filter top-k for an index without a coarse partition: cosine deepening plus one
wanted word's sorted list (a threshold algorithm over two sorted sources).

* the **cosine source**: the backend's ``m`` nearest rows (every other row has ``c~ <= c_m``,
  the rescaled cosine of the ``m``-th);
* the **attribute source**: one wanted word ``a``'s sorted posting list
  (:mod:`.lists`); after reading its first ``pos`` entries every unread row has ``p_a <= t``.

Every row read from either source is scored exactly (a list row only when ``c_m * p`` can still
reach the k-th score ``s_k``). A row in neither has ``S <= c_m * t * prod_{w != a} max
factor_w``; once that is below ``s_k`` the answer is exact.

Steps: (0) seed ``s_k`` by scoring the head (``block`` entries) of every wanted word's list,
and choose the first cosine depth from the manifest's ``cosine_profile`` (the typical cosine at
ranks 100 ... 2048, measured at build time): the depth minimising the modelled search cost plus
the cost of the list prefix left to read at that depth's typical cosine (otherwise
``max(initial, 4 k)``). (1) Search the ``m`` nearest rows and score them. (2) If
``c_m * P_max < s_k`` (``P_max``: the product of per-word column maxima of ``p_w`` resp.
``1 - p_w``) stop. (3) Pick the wanted word whose list prefix ``{p_a >= s_k / (c_m * rest)}`` is
shortest and read it in doubling blocks; stop when the next value is below the threshold.
(4) Before each block compare costs (``DeepeningConfig``'s per-row costs): when scoring the rest
of the prefix would cost more than a deeper cosine search, deepen instead and go on reading the
same list where it stopped. (5) With no usable list deepen, unless computing ``p`` of every row
from the columns is cheaper; past ``max_depth`` compute it anyway and score the rows with
``c_m * p >= s_k`` (the full exact scan only when that is a quarter of the rows or more).

With faiss, "every other row has ``c~ <= c_m``" holds up to the graph's own recall at depth
``m``, while rows with a high ``p`` are found by the attribute source whatever their cosine rank.
"""

from __future__ import annotations

import numpy as np

from stylesearch.index.store import Index
from stylesearch.search.scoring import rescale_cosine
from stylesearch.search.topk.config import DeepeningConfig
from stylesearch.search.topk.lists import ListReader
from stylesearch.search.topk.probs import all_probs, attribute_probs, factor
from stylesearch.search.topk.results import (
    RunningTopK,
    TopK,
    TopKStats,
    certainly_below,
    may_reach,
)
from stylesearch.search.topk.scan import full_scan_topk

__all__ = ["deepening_topk"]


def _factor_max(index: Index, add: list[int], remove: list[int]) -> list[float]:
    """Per query word, the largest value its factor of ``p`` takes over the catalog."""
    return [float(index.attr_max[w]) for w in add] + [
        1.0 - float(index.attr_min[w]) for w in remove
    ]


def deepening_topk(
    index: Index,
    q: np.ndarray,
    k: int,
    add: list[int],
    remove: list[int],
    allowed: np.ndarray | None,
    best: RunningTopK,
    stats: TopKStats,
    cfg: DeepeningConfig,
    n_allowed: int,
) -> TopK:
    """The exact top-k by cosine deepening and list reading (see the module docstring)."""
    n = index.count
    factor_max = _factor_max(index, add, remove)
    p_max = float(np.prod(factor_max)) if factor_max else 1.0
    readers = [
        ListReader(index, w, float(np.prod(factor_max[:i] + factor_max[i + 1 :])))
        for i, w in enumerate(add)
    ]
    reader: ListReader | None = None
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
        stats.first_depth = m
    while True:
        stats.rounds += 1
        stats.depth = m
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
            if certainly_below(c_m * p_max, s_k):
                if reader is not None and reader.pos:
                    stats.path = "list"
                return best.result(stats)
            if s_k <= 0:
                break
            if reader is None:
                usable = [r for r in readers if r.usable(r.need(s_k, c_m))]
                if not usable:
                    break
                reader = min(usable, key=lambda r: r.prefix(r.need(s_k, c_m)))
                reader.pos = reader.seeded
                stats.list_word = reader.word
            need = reader.need(s_k, c_m)
            if reader.next_value < need:  # no unread row of the list, nor any row outside it
                stats.path = "list"
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
            stats.list_read = reader.pos
            # p in the oracle's order; the list's own values stand in for its word's column
            p = np.ones(size, np.float32)
            for w in add:
                col = (
                    reader.values[start:stop]
                    if w == reader.word
                    else index.attributes[:, w][b_rows]
                )
                p *= factor(col, True)
            for w in remove:
                p *= factor(index.attributes[:, w][b_rows], False)
            live = may_reach(p, s_k, c_m)
            if allowed is not None:
                live &= allowed[b_rows]
            n_live = int(np.count_nonzero(live))
            survive = max(n_live / size, 0.01)
            if n_live:
                stats.rechecked += n_live
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
        p = all_probs(index.attributes, add, remove)
        if rows is not None:
            p = p[rows]
        else:
            rows = np.arange(n, dtype=np.int64)
        cand = may_reach(p, s_k, c_m)
        rows, p = rows[cand], p[cand]
        if rows.shape[0] > n_allowed // 4:
            stats.path = "full_scan"
            stats.full_scan = True
            result = full_scan_topk(
                index.vectors, index.attributes, q, k, add, remove, soft=True, allowed=allowed,
                cosine_power=best.power,
            )  # fmt: skip
            result.stats = stats
            return result
        stats.path = "columns"
        stats.rechecked += int(rows.shape[0])
        best.add(rows, index.backend.score_rows(q, rows), p)
        return best.result(stats)
