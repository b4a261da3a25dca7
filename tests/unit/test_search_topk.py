"""Exact top-k of the soft-filter score and hard filters, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from stylesearch.index.store import Index, csr_from_bags, write_index_arrays
from stylesearch.index.synthetic import make_synthetic_catalog
from stylesearch.search.topk import (
    DeepeningConfig,
    brute_force_topk,
    hard_filter_mask,
    soft_filter_topk,
)


@pytest.fixture(scope="module")
def far_down(tmp_path_factory):
    """Item 700 is the only likely 'red' item and sits at cosine rank 700 of 1000."""
    n, dim = 1000, 8
    rng = np.random.default_rng(0)
    query = np.zeros(dim, np.float32)
    query[0] = 1.0
    cos = np.linspace(0.99, 0.2, n).astype(np.float32)  # row i has cosine cos[i], descending
    side = rng.standard_normal((n, dim - 1)).astype(np.float32)
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    vectors = np.concatenate([cos[:, None], np.sqrt(1 - cos**2)[:, None] * side], axis=1)
    attributes = np.full((n, 2), 0.02, np.float16)  # word 0 "red", word 1 "striped"
    attributes[700, 0] = 1.0
    bags = [[0] if i == 700 else [1] for i in range(n)]
    folder = tmp_path_factory.mktemp("far") / "idx"
    write_index_arrays(folder, vectors, attributes, metadata=csr_from_bags(bags))
    return Index.load(folder), query


def test_best_filtered_item_far_down_the_cosine_list(far_down):
    index, query = far_down
    top = soft_filter_topk(index, query, 3, add=[0], remove=[])
    assert top.rows[0] == 700  # 0.5 * (1 + ~0.44) * 1.0 beats 0.995 * 0.02
    oracle = brute_force_topk(index.vectors, index.attributes, query, 3, [0], [], soft=True)
    np.testing.assert_array_equal(top.rows, oracle.rows)
    np.testing.assert_allclose(top.scores, oracle.scores, rtol=1e-6)
    assert top.stats["depth"] < 700  # found by the bound, not by reading 700 rows
    # a fixed re-rank window of the 100 nearest would have missed it
    window = brute_force_topk(
        index.vectors[:100], index.attributes[:100], query, 3, [0], [], soft=True
    )
    assert 700 not in window.rows


def test_unwanted_word_and_negative_cosines(far_down):
    index, query = far_down
    top = soft_filter_topk(index, -query, 5, add=[], remove=[0])
    oracle = brute_force_topk(index.vectors, index.attributes, -query, 5, [], [0], soft=True)
    np.testing.assert_array_equal(top.rows, oracle.rows)
    assert np.all(top.cosines < 0) and 700 not in top.rows


@pytest.fixture(scope="module", params=["exact", "faiss-hnsw"])
def synthetic(request, tmp_path_factory):
    cat = make_synthetic_catalog(5000, 32, 60, n_clusters=25, seed=11)
    folder = tmp_path_factory.mktemp(request.param) / "idx"
    write_index_arrays(
        folder,
        cat.vectors,
        cat.attributes,
        metadata=cat.metadata,
        backend=request.param,
        backend_params={"M": 16} if request.param != "exact" else None,
    )
    return cat, Index.load(folder)


def _queries(cat, n, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        q = cat.vectors[rng.integers(len(cat.vectors))] + 0.4 * rng.standard_normal(
            cat.vectors.shape[1]
        ).astype(np.float32) / np.sqrt(cat.vectors.shape[1])
        add = [int(rng.choice(g)) for g in cat.groups[: rng.integers(0, 3)]]
        remove = [int(rng.choice(cat.groups[3]))] if rng.random() < 0.5 else []
        yield (q / np.linalg.norm(q)).astype(np.float32), add, remove


@pytest.mark.parametrize(
    "config",
    [DeepeningConfig(), DeepeningConfig(initial=10, recheck_max=50), DeepeningConfig(initial=5000)],
    ids=["default", "deepening", "one-round"],
)
def test_soft_topk_equals_brute_force(synthetic, config):
    cat, index = synthetic
    found = total = 0
    paths = set()
    for q, add, remove in _queries(cat, 30, seed=5):
        top = soft_filter_topk(index, q, 10, add, remove, config=config)
        paths.add((top.stats["rounds"] > 1, top.stats["full_scan"], top.stats["rechecked"] > 0))
        oracle = brute_force_topk(index.vectors, index.attributes, q, 10, add, remove, soft=True)
        if index.backend.name == "exact":
            np.testing.assert_array_equal(top.rows, oracle.rows)
            np.testing.assert_allclose(top.scores, oracle.scores, rtol=1e-6)
        found += len(set(top.rows.tolist()) & set(oracle.rows.tolist()))
        total += 10
    assert found / total >= 0.99
    if config.recheck_max == 50:  # every path of the algorithm was taken
        assert {(True, True, False), (True, False, True), (True, False, False)} <= paths


def test_soft_topk_with_a_hard_filter(synthetic):
    cat, index = synthetic
    colour = int(cat.groups[0][0])
    for must, must_not in (([colour], []), ([], [colour])):
        allowed = hard_filter_mask(index, must, must_not)
        for q, add, remove in _queries(cat, 10, seed=9):
            top = soft_filter_topk(index, q, 10, add, remove, allowed=allowed)
            oracle = brute_force_topk(
                index.vectors, index.attributes, q, 10, add, remove, soft=True, allowed=allowed
            )
            assert np.all(allowed[top.rows])
            if index.backend.name == "exact" or allowed.mean() < 0.05:
                np.testing.assert_array_equal(top.rows, oracle.rows)


def test_hard_filter_mask(synthetic):
    cat, index = synthetic
    offsets, words = cat.metadata
    bags = [set(words[offsets[i] : offsets[i + 1]].tolist()) for i in range(len(offsets) - 1)]
    a, b, c = int(cat.groups[0][0]), int(cat.groups[1][0]), int(cat.groups[2][0])
    mask = hard_filter_mask(index, [a, b], [c])
    expected = [a in bag and b in bag and c not in bag for bag in bags]
    np.testing.assert_array_equal(mask, expected)
    assert hard_filter_mask(index, [], []) is None


def test_fewer_allowed_items_than_k(far_down):
    index, query = far_down
    allowed = hard_filter_mask(index, [0], [])
    top = soft_filter_topk(index, query, 10, [0], [], allowed=allowed)
    assert top.rows.tolist() == [700]
