"""A coarse partition of the catalog that gives sound per-cluster score bounds.

The exact soft-filter top-k (:mod:`stylesearch.search.topk`) needs, for rows it has not scored,
an upper bound of ``S = c~ * p``. A graph index only says "every row past depth ``m`` has a
cosine below the ``m``-th" (and only up to its recall); this module gives a bound per row that is
exact and costs one small matrix product per query:

* the rows are split into ``C`` clusters (spherical k-means on a sample, every row assigned to
  its nearest centroid by a small HNSW graph over the centroids: any assignment is sound, a
  good one is tight);
* per cluster ``j``: the unit centroid ``c_j`` and the **cone** ``rho_j``, the largest angle
  between ``c_j`` and a member. By the triangle inequality of angles on the sphere, every
  member ``x`` has ``angle(q, x) >= angle(q, c_j) - rho_j``, so
  ``cos(q, x) <= cos(max(0, angle(q, c_j) - rho_j))``;
* per cluster and word: the largest and the smallest ``p_w`` of a member (float16, exactly the
  stored values), so ``p <= prod_{w+} pmax_jw * prod_{w-} (1 - pmin_jw)`` for every member.

Files (in the index folder, written by :class:`~stylesearch.index.store.IndexWriter`)::

    coarse_centroids.npy   (C, D) float32 unit centroids
    coarse_cos.npy         (C,) float64 cos(rho_j), lowered by a rounding slack (1 for empty)
    coarse_assign.npy      (N,) int32 cluster of each row
    coarse_offsets.npy     (C + 1,) int64 and coarse_rows.npy (N,) int32: rows by cluster
    coarse_pmax.npy        (C, V) float16 per-cluster column maxima of p (0 for empty)
    coarse_pmin.npy        (C, V) float16 per-cluster column minima of p (1 for empty)
    coarse_angle.npy       (N,) float32 each row's angle to its centroid (radians, raised by a
                           rounding slack): the per-row cone ``cos(max(0, angle(q, c_j) - a_i))``

Memory: ``4 C D + 20 N + 4 C V`` bytes (C <= 1024): about 32 MB at 1.5M items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["COARSE_FILES", "CoarseIndex", "build_coarse", "default_clusters"]

COARSE_FILES = (
    "coarse_centroids.npy",
    "coarse_cos.npy",
    "coarse_assign.npy",
    "coarse_offsets.npy",
    "coarse_rows.npy",
    "coarse_pmax.npy",
    "coarse_pmin.npy",
    "coarse_angle.npy",
)
#: slack on cosines computed in float32 (member to centroid, query to centroid)
COS_SLACK = 1e-5
#: rows per cluster aimed at, and the largest number of clusters: on a catalog large enough
#: for the graph seed the exact top-k caps far rows' cosines with the graph, and a query's
#: per-cluster work (the centroid product, the bound arrays it recomputes per list block) then
#: outweighs tighter cones (docs/performance.md, "At most 1024 coarse clusters")
ROWS_PER_CLUSTER = 384
MAX_CLUSTERS = 1024


def default_clusters(n: int) -> int:
    """Clusters for ``n`` rows: about one per :data:`ROWS_PER_CLUSTER`, 1 ... 1024."""
    return int(np.clip(n // ROWS_PER_CLUSTER, 1, MAX_CLUSTERS))


def _train_centroids(vectors: np.ndarray, c: int, seed: int, niter: int) -> np.ndarray:
    n, dim = vectors.shape
    rng = np.random.default_rng(seed)
    if c >= n:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    sample = np.sort(rng.choice(n, size=min(n, 40 * c), replace=False))
    x = np.ascontiguousarray(vectors[sample], dtype=np.float32)
    if c == 1:
        centroid = x.mean(axis=0, keepdims=True)
    else:
        import faiss

        km = faiss.Kmeans(dim, c, niter=niter, spherical=True, seed=seed, verbose=False)
        km.cp.max_points_per_centroid = 40
        km.train(x)
        centroid = np.asarray(km.centroids, dtype=np.float32)
    norms = np.linalg.norm(centroid, axis=1, keepdims=True)
    out = np.divide(centroid, norms, out=np.zeros_like(centroid), where=norms > 0)
    out[norms[:, 0] <= 0, 0] = 1.0  # a degenerate centroid still is a unit vector
    return out.astype(np.float32)


def _assign(vectors: np.ndarray, centroids: np.ndarray, chunk: int) -> np.ndarray:
    """Nearest centroid of every row (approximate: a 3-layer HNSW over the centroids)."""
    n = vectors.shape[0]
    c, dim = centroids.shape
    assign = np.empty(n, np.int32)
    if c == 1:
        assign[:] = 0
        return assign
    import faiss

    graph = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = 80
    graph.add(centroids)
    params = faiss.SearchParametersHNSW(efSearch=64)
    for start in range(0, n, chunk):
        block = np.ascontiguousarray(vectors[start : start + chunk], dtype=np.float32)
        _, lab = graph.search(block, 1, params=params)
        assign[start : start + block.shape[0]] = lab[:, 0]
    return assign


def build_coarse(
    vectors: np.ndarray,
    attributes: np.ndarray,
    folder: str | Path,
    *,
    clusters: int | None = None,
    seed: int = 0,
    niter: int = 8,
    chunk: int = 65536,
) -> dict[str, int]:
    """Compute the partition and its bounds for ``vectors`` ``(N, D)`` (unit rows) and
    ``attributes`` ``(N, V)`` (float16, Fortran order) and write the files into ``folder``.

    Returns the manifest entry ``{"clusters": C, "count": N}``.
    """
    folder = Path(folder)
    n, dim = vectors.shape
    vocab = attributes.shape[1]
    c = int(clusters) if clusters else default_clusters(n)
    c = max(1, min(c, max(n, 1)))
    centroids = _train_centroids(vectors, c, seed, niter) if n else np.eye(1, dim, dtype=np.float32)
    c = centroids.shape[0]
    assign = _assign(vectors, centroids, chunk) if n else np.zeros(0, np.int32)
    # cone of each cluster: the smallest cosine of a member to its centroid
    min_cos = np.ones(c, np.float64)
    angle = np.empty(n, np.float32)
    for start in range(0, n, chunk):
        block = np.asarray(vectors[start : start + chunk], dtype=np.float32)
        a = assign[start : start + block.shape[0]]
        cos = np.einsum("ij,ij->i", block, centroids[a], dtype=np.float32).astype(np.float64)
        cos = np.clip(cos - COS_SLACK, -1.0, 1.0)
        np.minimum.at(min_cos, a, cos)
        # float32 rounded up: never below the float64 angle
        ang = np.arccos(cos)
        ang32 = ang.astype(np.float32)
        angle[start : start + block.shape[0]] = np.where(
            ang32 < ang, np.nextafter(ang32, np.float32(4.0)), ang32
        )
    order = np.argsort(assign, kind="stable").astype(np.int32)
    counts = np.bincount(assign, minlength=c)
    offsets = np.zeros(c + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    # per-cluster column maxima / minima of p, one contiguous column at a time
    pmax = np.zeros((c, vocab), np.float16)
    pmin = np.ones((c, vocab), np.float16)
    nonempty = counts > 0
    starts = offsets[:-1][nonempty]
    for w in range(vocab):
        col = np.asarray(attributes[:, w])[order]
        if n:
            pmax[nonempty, w] = np.maximum.reduceat(col, starts)
            pmin[nonempty, w] = np.minimum.reduceat(col, starts)
    np.save(folder / "coarse_centroids.npy", centroids)
    np.save(folder / "coarse_cos.npy", min_cos)
    np.save(folder / "coarse_assign.npy", assign)
    np.save(folder / "coarse_offsets.npy", offsets)
    np.save(folder / "coarse_rows.npy", order)
    np.save(folder / "coarse_pmax.npy", pmax)
    np.save(folder / "coarse_pmin.npy", pmin)
    np.save(folder / "coarse_angle.npy", angle)
    return {"clusters": int(c), "count": int(n)}


@dataclass
class CoarseIndex:
    """The loaded partition (see the module docstring)."""

    centroids: np.ndarray  # (C, D) float32
    min_cos: np.ndarray  # (C,) float64
    assign: np.ndarray  # (N,) int32
    offsets: np.ndarray  # (C + 1,) int64
    rows: np.ndarray  # (N,) int32
    pmax: np.ndarray  # (C, V) float16
    pmin: np.ndarray  # (C, V) float16
    angle: np.ndarray  # (N,) float32

    def __post_init__(self) -> None:
        # a query reads one word's column of each; in the files' row order its C values lie
        # 2 V bytes apart (a cache miss per cluster), so keep them by column
        self.pmax = np.asfortranarray(self.pmax)
        self.pmin = np.asfortranarray(self.pmin)

    @classmethod
    def load(cls, folder: str | Path) -> CoarseIndex:
        folder = Path(folder)
        arrays = [np.load(folder / name) for name in COARSE_FILES]
        return cls(*arrays)

    #: per entry of the index's sorted attribute lists (``attr_postings_rows.npy``): its row's
    #: cluster and angle, in list order (:meth:`attach_lists`), so reading a list needs no
    #: random access into ``assign`` / ``angle``
    list_cluster: np.ndarray | None = None
    list_angle: np.ndarray | None = None

    @property
    def count(self) -> int:
        return int(self.assign.shape[0])

    def attach_lists(self, list_rows: np.ndarray) -> None:
        """Gather the cluster and angle of every attribute-list entry (``list_rows``: the rows of
        all lists, concatenated) into contiguous arrays: ``6 E`` bytes for ``E`` entries."""
        rows = np.asarray(list_rows)
        small = self.centroids.shape[0] <= np.iinfo(np.int16).max
        self.list_cluster = self.assign[rows].astype(np.int16 if small else np.int32)
        self.list_angle = self.angle[rows]

    def query_angles(self, query: np.ndarray) -> np.ndarray:
        """``(C,)`` float64 angles between a unit ``query`` and the centroids, lowered by the
        rounding slack (so every bound derived from them stays an upper bound)."""
        qc = self.centroids @ np.asarray(query, dtype=np.float32)
        return np.arccos(np.clip(qc.astype(np.float64) + COS_SLACK, -1.0, 1.0))

    def cosine_bounds(self, query: np.ndarray, angles: np.ndarray | None = None) -> np.ndarray:
        """``(C,)`` float64: an upper bound of ``cos(query, x)`` for every member ``x`` of each
        cluster (``cos(max(0, angle(q, c_j) - rho_j))``, plus a rounding slack); ``query`` a
        unit ``(D,)`` vector (``angles``: its :meth:`query_angles`, if already computed)."""
        theta = self.query_angles(query) if angles is None else angles
        gap = theta - np.arccos(self.min_cos)
        return np.where(gap <= 0, 1.0, np.cos(np.maximum(gap, 0.0)) + COS_SLACK)

    def row_cosine_bounds(
        self,
        angles: np.ndarray,
        rows: np.ndarray,
        clusters: np.ndarray | None = None,
        row_angles: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per-row bounds ``cos(max(0, angle(q, c_j) - a_i))`` (+ slack) for ``rows``, from
        the query's :meth:`query_angles`; never above the cluster's bound. ``clusters`` and
        ``row_angles``: the rows' clusters and angles when the caller has them already."""
        cl = self.assign[rows] if clusters is None else clusters
        a = self.angle[rows] if row_angles is None else row_angles
        gap = angles[cl] - a.astype(np.float64)
        return np.where(gap <= 0, 1.0, np.cos(np.maximum(gap, 0.0)) + COS_SLACK)

    def members(self, cluster: int) -> np.ndarray:
        return self.rows[self.offsets[cluster] : self.offsets[cluster + 1]]
