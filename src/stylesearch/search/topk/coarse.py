"""The soft-filter top-k over the index's coarse partition (:mod:`stylesearch.index.coarse`).

Per cluster ``j``: ``u_j`` bounds the rescaled cosine of every member (the cone bound) and
``B_j = u_j * prod_{w+} pmax_jw * prod_{w-} (1 - pmin_jw)`` bounds its score.

1. Scan the clusters best ``B_j`` first, scoring their rows exactly (``p`` first, the cosine only
   when ``u_j p`` reaches the k-th score ``s_k``), until about ``coarse_rows`` rows are scanned;
   stop as soon as every unscanned ``B_j < s_k``.
2. Read the sorted list of the wanted word ``a`` whose needed prefix is shortest: a row of an
   unscanned cluster ``j`` left unread has ``p_a <= min(t, pmax_ja)`` (``t``: the next list
   value, or the list's floor), so its score is at most ``u_j min(t, pmax_ja) R_ja`` (``R_ja``:
   the other words' factors of ``B_j``); each read row is scored exactly when ``u_j p`` can
   reach ``s_k``. Stop when the largest such bound is below ``s_k``.
3. Without a usable list, go on scanning clusters (or, when most of the catalog is left, compute
   ``p`` of every row and score the rows with ``u_j p >= s_k``).

Every bound is exact, so the result is exact with any backend. Optionally the backend's nearest
rows come first (``TopKConfig.coarse_graph_depth``): every other row's cosine bound is then
capped at the last one's, exact with the exact backend and up to the graph's recall with faiss.

The per-row work (the bounds of a cluster's members or a list block, ``p``, the bounds steering
the lists, the running top-k) runs in compiled loops (:mod:`stylesearch.search.kernels`); the
exact cosines are the backend's ``score_rows``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stylesearch.index.filters import RowFilter
from stylesearch.index.store import Index
from stylesearch.search.kernels import FLOAT16_TABLE, frozen, list_bounds, survivors
from stylesearch.search.scoring import BOUND_EPS, rescale_cosine, unwanted_factor_bound
from stylesearch.search.topk.config import TopKConfig
from stylesearch.search.topk.lists import ListReader
from stylesearch.search.topk.probs import all_probs, attribute_probs, index_removal_scale
from stylesearch.search.topk.results import (
    RunningTopK,
    TopK,
    TopKStats,
    certainly_below,
    may_reach,
    needed_factor,
)

__all__ = ["CoarseTopK"]


class CoarseTopK:
    """One soft-filter query answered over the coarse partition; :meth:`run` gives the top-k.

    The state of the search lives in attributes: the per-cluster bounds ``bound`` and the order
    they are visited in (``order``, ``pos``), the clusters already ``scanned``, the list readers
    and their ``limits``, and the running top-k ``best``.
    """

    def __init__(
        self,
        index: Index,
        coarse: Any,
        q: np.ndarray,
        add: list[int],
        remove: list[int],
        allowed: RowFilter | None,
        best: RunningTopK,
        stats: TopKStats,
        cfg: TopKConfig,
        n_allowed: int,
    ) -> None:
        self.index, self.coarse, self.q = index, coarse, q
        self.add, self.remove, self.allowed = add, remove, allowed
        self.removal_scale = index_removal_scale(index)
        self.best, self.stats, self.cfg, self.n_allowed = best, stats, cfg, n_allowed
        self.angles = coarse.query_angles(q)
        #: (C,) bound of the rescaled cosine of each cluster's members
        self.u = rescale_cosine(coarse.cosine_bounds(q, self.angles), best.power)
        #: bound of the rescaled cosine of every row the graph seed did not return
        self.u_cap = 1.0
        self.readers: list[ListReader] = []

    def run(self) -> TopK:
        """The exact top-k (steps 1-3 of the module docstring)."""
        self.stats.path = "coarse"
        self.stats.clusters = 0
        if self._seed_from_graph():
            return self.best.result(self.stats)
        self._bound_clusters()
        if not self._scan_best_clusters() and not self._read_lists():
            self._finish_without_lists()
        return self.best.result(self.stats)

    # -- set-up ---------------------------------------------------------------------------

    def _seed_from_graph(self) -> bool:
        """Score the backend's nearest rows and cap the cosine bound of all others at the last
        one's. True when they are every allowed row (the answer is complete)."""
        cfg, index = self.cfg, self.index
        depth = cfg.coarse_graph_depth
        if depth is None:
            graph = index.backend.name != "exact" and index.count >= cfg.graph_min_count
            depth = cfg.graph_depth if graph else 0
        m = min(depth, self.n_allowed)
        if m <= 0:
            return False
        cos, rows = index.backend.search(self.q[None, :], m, self.allowed)
        keep = rows[0] >= 0
        cos, rows = cos[0][keep], rows[0][keep]
        self.best.add(rows, cos, self._probs(rows))
        self.stats.rounds, self.stats.depth = 1, m
        if rows.shape[0] >= self.n_allowed:
            return True
        if rows.shape[0] >= m:  # every other row has c~ <= that of the m-th
            c_cap = float(rescale_cosine(cos.min(), self.best.power))
            self.u_cap = min(1.0, c_cap * (1.0 + BOUND_EPS) + 1e-6)
            self.u = np.minimum(self.u, self.u_cap)
        return False

    def _bound_clusters(self) -> None:
        """Per-cluster score bounds ``B_j``, their visiting order, and the kernel's arguments."""
        coarse = self.coarse
        n_clusters = coarse.centroids.shape[0]
        caps = [np.asarray(coarse.pmax[:, w], dtype=np.float64) for w in self.add] + [
            unwanted_factor_bound(coarse.pmin[:, w], self.removal_scale) for w in self.remove
        ]
        factors = np.ones(n_clusters)
        for f in caps:
            factors = factors * f
        self.bound = self.u * factors  # B_j
        # clusters by bound, best first: the best cluster_head now, the rest when reached
        head = min(n_clusters, self.cfg.cluster_head)
        bound = self.bound
        order = np.argpartition(-bound, head - 1)[:head] if head < n_clusters else np.arange(head)
        self.order = order[np.lexsort((order, -bound[order]))]
        self.pos = 0  # next position in `order`
        self.scanned = np.zeros(n_clusters, dtype=bool)
        self.sizes = np.diff(coarse.offsets)
        if coarse.list_cluster is None:  # a partition loaded on its own: align it once
            coarse.attach_lists(self.index.attr_post_rows)
        self._kernel_arguments(caps)

    def _kernel_arguments(self, caps: list[np.ndarray]) -> None:
        """The compiled loop's arguments (:func:`~stylesearch.search.kernels.survivors`): the
        words in the oracle's order, each word's per-cluster factor cap (a wanted word's is
        lowered as its list is read), the attribute matrix as float16 bits."""
        add, n_clusters = self.add, self.scanned.shape[0]
        self.words = frozen(np.asarray(add + self.remove, dtype=np.int64))
        self.wanted = frozen(np.arange(self.words.shape[0]) < len(add))
        word_caps = np.empty((self.words.shape[0], n_clusters))
        for i, f in enumerate(caps):
            word_caps[i] = f
        self.word_caps = frozen(word_caps)
        #: lowered to each wanted word's list's next value as the list is read
        self.limits = np.ones(self.words.shape[0])
        # read-only views (one numba compilation per function); those of `limits` and
        # `scanned` see the updates made to them during the query
        self.limits_view, self.scanned_view = frozen(self.limits), frozen(self.scanned)
        self.attr_bits = frozen(np.asarray(self.index.attributes).view(np.uint16))
        allowed = self.allowed
        self.allowed_arr = frozen(np.zeros(0, bool) if allowed is None else allowed.mask)
        self.u64 = frozen(np.asarray(self.u, dtype=np.float64))
        self.angles64 = frozen(self.angles)

    # -- scoring --------------------------------------------------------------------------

    def _score_survivors(
        self,
        rows: np.ndarray,
        cl: np.ndarray,
        ang: np.ndarray,
        lead: int = -1,
        lead_values: np.ndarray | None = None,
    ) -> None:
        """Score exactly the ``rows`` (clusters ``cl``, angles ``ang``) whose bounds reach s_k."""
        best = self.best
        s_k = best.kth
        if s_k <= 0:  # no k-th score yet: every row not scanned and allowed
            keep = ~self.scanned[cl]
            if self.allowed is not None:
                keep &= self.allowed_arr[rows]
            rows = np.asarray(rows[keep], dtype=np.int64)
            p = self._probs(rows)
        else:
            out_rows = np.empty(rows.shape[0], np.int64)
            out_p = np.empty(rows.shape[0], np.float32)
            bits = np.zeros(0, np.uint16) if lead_values is None else lead_values.view(np.uint16)
            n_out = survivors(
                frozen(rows), frozen(cl), frozen(ang), lead, frozen(bits), self.attr_bits,
                self.words, self.wanted, self.word_caps, self.limits_view, self.u64,
                self.angles64, self.u_cap, float(best.power), s_k, self.scanned_view,
                np.float32(self.removal_scale),
                self.allowed_arr, FLOAT16_TABLE, out_rows, out_p,
            )  # fmt: skip
            rows, p = out_rows[:n_out], out_p[:n_out]
        if rows.shape[0]:
            self.stats.rechecked += int(rows.shape[0])
            best.add(rows, self.index.backend.score_rows(self.q, rows), p)

    def _scan(self, j: int) -> None:
        """Score the members of cluster ``j`` that can reach s_k, and mark it scanned."""
        rows = self.coarse.members(j)
        self.stats.clusters += 1
        if rows.shape[0]:
            cl = np.full(rows.shape[0], j, dtype=self.coarse.list_cluster.dtype)
            self._score_survivors(rows, cl, self.coarse.angle[rows])
        self.scanned[j] = True

    def _next_bound(self) -> float:
        """The largest bound of an unscanned cluster (``order[pos]``'s), -1 when none is left."""
        n_clusters = self.bound.shape[0]
        while True:
            while self.pos < self.order.shape[0] and self.scanned[self.order[self.pos]]:
                self.pos += 1
            if self.pos < self.order.shape[0] or self.order.shape[0] == n_clusters:
                return float(self.bound[self.order[self.pos]]) if self.pos < n_clusters else -1.0
            # the head is used up: order every cluster
            self.order, self.pos = np.argsort(-self.bound, kind="stable"), 0

    def _clusters_proven(self) -> bool:
        """True when no unscanned cluster can reach s_k (or none is left)."""
        b_next = self._next_bound()
        return b_next < 0 or certainly_below(b_next, self.best.kth)

    # -- the three steps ------------------------------------------------------------------

    def _scan_best_clusters(self) -> bool:
        """Step 1: scan the best-bounded clusters, about ``coarse_rows`` rows. True when that
        proved the answer."""
        scanned_rows = 0
        while True:
            if self._clusters_proven():
                return True
            if scanned_rows >= self.cfg.coarse_rows and self.best.kth > 0:
                return False
            j = int(self.order[self.pos])
            self._scan(j)
            scanned_rows += int(self.sizes[j])

    def _read_lists(self) -> bool:
        """Step 2: the wanted words' sorted lists, threshold-algorithm style. A row of an
        unscanned cluster j not read in any list has ``p_i <= min(t_i, pmax_ji)`` for every
        wanted word i (``t_i``: list i's next value, or its floor once read to the end). True
        when that proved the answer; False without a wanted word, or when every list is read to
        its end and the bound still stands."""
        self.readers = [ListReader(self.index, w) for w in self.add]
        if not self.readers:
            return False
        floors = frozen(np.asarray([r.floor for r in self.readers], dtype=np.float64))
        self.stats.path = "coarse+list"
        for i in range(len(self.readers)):  # seed s_k with the likeliest rows: every list's head
            self._read_block(i, self.cfg.block)
        while True:
            if self._clusters_proven():
                return True
            s_k = self.best.kth
            unread, rest, at_floor = list_bounds(
                self.u64, self.word_caps, self.limits_view, len(self.add), floors,
                self.scanned_view,
            )  # fmt: skip
            if certainly_below(unread, s_k):
                return True
            choice = self._next_block(s_k, rest, at_floor)
            if choice is None:
                return False
            self._read_block(*choice)

    def _next_block(
        self, s_k: float, rest: np.ndarray, at_floor: np.ndarray
    ) -> tuple[int, int] | None:
        """The list to read next and how many entries: the list that proves the bound alone
        with the shortest prefix left to read (the other words capped by their lists' next
        values and the clusters' maxima), else the one closest to its end (its floor then caps
        every unread row); blocks double but never pass the prefix the current s_k needs.
        ``None`` when every list is read to its end."""
        best_i, best_len = -1, np.inf
        for i, r in enumerate(self.readers):
            if r.pos >= r.length or s_k <= 0 or not certainly_below(float(at_floor[i]), s_k):
                continue
            todo = r.prefix(needed_factor(s_k, float(rest[i]))) - r.pos
            if todo < best_len:
                best_i, best_len = i, todo
        if best_i < 0:
            left = [(r.length - r.pos, i) for i, r in enumerate(self.readers) if r.pos < r.length]
            if not left:
                return None
            best_len, best_i = min(left)
        r = self.readers[best_i]
        return best_i, int(max(1, min(best_len, max(self.cfg.block, r.pos))))

    def _read_block(self, i: int, size: int) -> None:
        """Score the next ``size`` entries of list ``i`` whose bound can still reach s_k (the
        list's value and the other words' caps, then their own factors, then the row's cone,
        then ``p``: :func:`~stylesearch.search.kernels.survivors`)."""
        reader = self.readers[i]
        start, stop = reader.pos, min(reader.pos + size, reader.length)
        reader.pos = stop
        self.stats.list_read += stop - start
        self.limits[i] = reader.next_value  # every row left unread in list i is below it
        g0, g1 = reader.start + start, reader.start + stop
        self._score_survivors(
            reader.rows[start:stop], self.coarse.list_cluster[g0:g1],
            self.coarse.list_angle[g0:g1], i, reader.values[start:stop],
        )  # fmt: skip

    def _finish_without_lists(self) -> None:
        """Step 3: the clusters that can still reach s_k, or every row's ``p`` when they hold
        more than a quarter of the catalog."""
        best, stats = self.best, self.stats
        open_rows = int(self.sizes[~self.scanned & may_reach(self.bound, best.kth)].sum())
        if open_rows <= self.index.count // 4:
            stats.path = "coarse+scan"
            while not self._clusters_proven():
                self._scan(int(self.order[self.pos]))
            return
        stats.path = "coarse+columns"
        p = all_probs(self.index.attributes, self.add, self.remove, self.removal_scale)
        rows = np.flatnonzero(~self.scanned[self.coarse.assign])
        if self.allowed is not None:
            rows = rows[self.allowed.mask[rows]]
        p = p[rows]
        cand = may_reach(p, best.kth, self._row_bounds(rows))
        rows, p = rows[cand], p[cand]
        stats.rechecked += int(rows.shape[0])
        if rows.shape[0]:
            best.add(rows, self.index.backend.score_rows(self.q, rows), p)

    def _probs(self, rows: np.ndarray) -> np.ndarray:
        """``p`` of ``rows`` (:func:`~stylesearch.search.topk.probs.attribute_probs`)."""
        return attribute_probs(
            self.index.attributes, rows, self.add, self.remove, self.removal_scale
        )

    def _row_bounds(self, rows: np.ndarray) -> np.ndarray:
        """Per-row bound of the rescaled cosine (the row's own cone, within the cluster's)."""
        ub = rescale_cosine(self.coarse.row_cosine_bounds(self.angles, rows), self.best.power)
        return np.minimum(ub, self.u_cap)
