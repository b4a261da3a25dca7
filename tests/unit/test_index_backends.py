"""Vector backends: the exact oracle by hand, faiss HNSW against it."""

from __future__ import annotations

import numpy as np
import pytest

from stylesearch.index.backends import (
    ExactBackend,
    FaissHNSWBackend,
    exact_search,
)
from stylesearch.index.filters import RowFilter
from stylesearch.index.memory import huge_pages
from stylesearch.testing.synthetic import make_synthetic_catalog


def test_exact_search_by_hand():
    vectors = np.array([[1, 0], [0, 1], [0.6, 0.8], [-1, 0]], dtype=np.float32)
    scores, rows = exact_search(vectors, np.array([[0.8, 0.6]], np.float32), 3)
    # q . v = 0.8, 0.6, 0.96, -0.8
    assert rows.tolist() == [[2, 0, 1]]
    np.testing.assert_allclose(scores[0], [0.96, 0.8, 0.6], atol=1e-6)


def test_exact_search_allowed_and_padding():
    vectors = np.eye(4, dtype=np.float32)
    allowed = RowFilter.of_mask(np.array([False, True, False, True]))
    scores, rows = exact_search(vectors, np.array([[0.1, 0.2, 0.3, 0.4]], np.float32), 3, allowed)
    assert rows.tolist() == [[3, 1, -1]]
    assert scores[0, 2] == -np.inf


def test_exact_ties_go_to_the_lower_row():
    vectors = np.array([[1, 0], [1, 0], [1, 0]], dtype=np.float32)
    _, rows = exact_search(vectors, np.array([[1, 0]], np.float32), 2)
    assert rows.tolist() == [[0, 1]]


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    cat = make_synthetic_catalog(4000, 32, 20, n_clusters=40, seed=7)
    folder = tmp_path_factory.mktemp("hnsw")
    faiss_backend = FaissHNSWBackend.build(cat.vectors, folder, M=16, ef_construction=80)
    return cat, faiss_backend


def _queries(cat, n=50, seed=0):
    rng = np.random.default_rng(seed)
    q = cat.vectors[rng.integers(len(cat.vectors), size=n)]
    q = q + 0.5 * rng.standard_normal(q.shape).astype(np.float32) / np.sqrt(q.shape[1])
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def _recall(a, b):
    return np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b, strict=True)])


def test_faiss_matches_exact_on_clustered_vectors(clustered):
    cat, backend = clustered
    q = _queries(cat)
    exact_scores, exact_rows = ExactBackend(cat.vectors).search(q, 10)
    scores, rows = backend.search(q, 10)
    assert _recall(rows, exact_rows) >= 0.99
    # returned scores are the true inner products
    np.testing.assert_allclose(
        scores, np.einsum("qd,qkd->qk", q, cat.vectors[rows]), rtol=1e-5, atol=1e-6
    )


def test_faiss_vectors_view_is_the_catalog(clustered):
    cat, backend = clustered
    np.testing.assert_array_equal(backend.vectors, cat.vectors)


def test_huge_pages_keep_the_contents():
    """The advice never changes memory; a range without a whole 2 MB page is left alone."""
    data = np.random.default_rng(0).standard_normal(3 << 20).astype(np.float32)  # 12 MB
    before = data.copy()
    assert isinstance(huge_pages(data.ctypes.data, data.nbytes), bool)
    np.testing.assert_array_equal(data, before)
    assert huge_pages(data.ctypes.data, 4096) is False


def test_faiss_selective_filter_is_exact(clustered):
    cat, backend = clustered
    rng = np.random.default_rng(1)
    allowed = RowFilter.of_mask(rng.random(len(cat.vectors)) < 0.01)  # below exact_below
    q = _queries(cat, 20, seed=2)
    exact = exact_search(cat.vectors, q, 10, allowed)
    got = backend.search(q, 10, allowed)
    np.testing.assert_array_equal(got[1], exact[1])


def test_faiss_broad_filter_uses_the_graph_with_high_recall(clustered):
    cat, backend = clustered
    allowed = RowFilter.of_mask(np.random.default_rng(3).random(len(cat.vectors)) < 0.3)
    q = _queries(cat, 40, seed=4)
    _, exact_rows = exact_search(cat.vectors, q, 10, allowed)
    _, rows = backend.search(q, 10, allowed)
    assert np.all(allowed.mask[rows[rows >= 0]])
    assert _recall(rows, exact_rows) >= 0.98


def test_faiss_backend_round_trip(tmp_path, clustered):
    cat, _ = clustered
    built = FaissHNSWBackend.build(cat.vectors[:500], tmp_path, M=8, ef_search=32)
    loaded = FaissHNSWBackend.load(cat.vectors[:500], tmp_path, built.params())
    assert (
        loaded.params()
        == built.params()
        == {
            "M": 8,
            "ef_construction": 100,
            "ef_search": 32,
            "exact_below": 0.05,
            "ef_retry": 1024,
        }
    )
    q = _queries(cat, 5)
    np.testing.assert_array_equal(built.search(q, 5)[1], loaded.search(q, 5)[1])


def test_score_rows_are_the_inner_products(clustered):
    cat, backend = clustered
    q = _queries(cat, 1)[0]
    rows = np.array([5, 0, 3999, 5, 17], np.int64)
    want = cat.vectors[rows] @ q
    for b in (backend, ExactBackend(cat.vectors)):
        np.testing.assert_allclose(b.score_rows(q, rows), want, rtol=1e-5, atol=1e-6)
        assert b.score_rows(q, np.zeros(0, np.int64)).shape == (0,)
    # faiss scores a row as its graph search does, up to float32 rounding: on CPUs where faiss
    # computes the search's distances four at a time (AVX-512 builds) the sums round apart by
    # an ulp, far inside the exact top-k's BOUND_EPS slack
    scores, found = backend.search(q[None], 10)
    np.testing.assert_allclose(backend.score_rows(q, found[0]), scores[0], rtol=1e-6, atol=0)


class _CountingIndex:
    """Wraps a faiss index: records the efSearch of every search."""

    def __init__(self, index):
        self._index = index
        self.efs: list[int] = []

    def search(self, q, k, params=None):
        self.efs.append(params.efSearch if params is not None else -1)
        return self._index.search(q, k, params=params)


def test_adaptive_ef_search_retries_queries_off_the_manifold(clustered, tmp_path):
    cat, _ = clustered
    backend = FaissHNSWBackend.build(
        cat.vectors, tmp_path, M=16, ef_construction=80, ef_search=16, ef_retry=512
    )
    assert 0 < backend._retry_below < 1
    counter = _CountingIndex(backend.index)
    backend.index = counter
    # a catalog row is on the manifold: one search at the base efSearch
    backend.search(cat.vectors[:1], 10)
    assert counter.efs == [16]
    # query arithmetic: an image plus unrelated word directions lands between clusters
    rng = np.random.default_rng(3)
    words = rng.standard_normal((50, 2, cat.vectors.shape[1])).astype(np.float32)
    words /= np.linalg.norm(words, axis=2, keepdims=True)
    q = cat.vectors[rng.integers(len(cat.vectors), size=50)] + words.sum(axis=1)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    counter.efs.clear()
    scores, rows = backend.search(q, 10)
    assert counter.efs == [16, 512]  # one batched retry for the off-manifold queries
    _, exact_rows = exact_search(cat.vectors, q, 10)
    assert _recall(rows, exact_rows) >= 0.99
    assert backend.params()["ef_retry"] == 512
