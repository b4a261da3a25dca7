"""Exact top-k of the soft-filter score and hard filters, against brute force."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stylesearch.index.coarse import CoarseIndex, build_coarse
from stylesearch.index.filters import RowFilter
from stylesearch.index.fusion import TextFusion
from stylesearch.index.postings import csr_from_bags
from stylesearch.index.store import Index
from stylesearch.search.topk import (
    TopKConfig,
    hard_filter_mask,
    hard_filter_topk,
    soft_filter_topk,
)
from stylesearch.testing.index_arrays import write_index_arrays
from stylesearch.testing.oracle import exact_topk
from stylesearch.testing.synthetic import make_synthetic_catalog


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
    oracle = exact_topk(index.vectors, index.attributes, query, 3, [0], [], soft=True)
    np.testing.assert_array_equal(top.rows, oracle.rows)
    np.testing.assert_allclose(top.scores, oracle.scores, rtol=1e-6)
    assert top.stats["depth"] < 700  # found by the bound, not by reading 700 rows
    # a fixed re-rank window of the 100 nearest would have missed it
    window = exact_topk(index.vectors[:100], index.attributes[:100], query, 3, [0], [], soft=True)
    assert 700 not in window.rows


def test_unwanted_word_and_negative_cosines(far_down):
    index, query = far_down
    top = soft_filter_topk(index, -query, 5, add=[], remove=[0])
    oracle = exact_topk(index.vectors, index.attributes, -query, 5, [], [0], soft=True)
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


CONFIGS = {
    # the coarse partition's bounds (the default when the index has one)
    "default": TopKConfig(),
    # one cluster scanned, then the list (or the remaining clusters / the columns)
    "coarse-list": TopKConfig(coarse_rows=1, block=8),
    # the graph's nearest rows cap the cosine bound of every other row
    "coarse-graph": TopKConfig(coarse_graph_depth=50, coarse_rows=1, block=8),
}


@pytest.mark.parametrize("name", ["default", "coarse-list", "coarse-graph"])
def test_sharper_cosine_equals_brute_force(synthetic, name):
    """``S = c~^g p`` with g = 4: the same bounds raised to g keep the answer exact."""
    cat, index = synthetic
    found = total = 0
    for q, add, remove in _queries(cat, 20, seed=9):
        top = soft_filter_topk(index, q, 10, add, remove, config=CONFIGS[name], cosine_power=4)
        oracle = exact_topk(
            index.vectors, index.attributes, q, 10, add, remove, soft=True, cosine_power=4
        )
        if index.backend.name == "exact":
            np.testing.assert_array_equal(top.rows, oracle.rows)
        found += len(set(top.rows.tolist()) & set(oracle.rows.tolist()))
        total += 10
    assert found / total >= 0.99
    plain = exact_topk(index.vectors, index.attributes, q, 10, add, remove, soft=True)
    assert plain.scores[0] >= oracle.scores[0]  # c~^4 <= c~: a sharper score is never higher


@pytest.mark.parametrize("name", list(CONFIGS))
def test_an_index_with_its_items_text_blended_in(tmp_path, name):
    """An index built with metadata weight 0.5: unwanted words' factor max(0, 1 - 2 p_w), on
    every path, equal to the oracle's."""
    cat = make_synthetic_catalog(3000, 16, 40, n_clusters=20, seed=3)
    folder = write_index_arrays(
        tmp_path / "idx", cat.vectors, cat.attributes, metadata=cat.metadata,
        manifest={"metadata_weight": 0.5},
    )  # fmt: skip
    index = Index.load(folder)
    zeros = 0
    for q, add, remove in _queries(cat, 20, seed=4):
        remove = remove or [int(cat.groups[3][0])]
        top = soft_filter_topk(index, q, 10, add, remove, config=CONFIGS[name])
        oracle = exact_topk(
            index.vectors, index.attributes, q, 10, add, remove, soft=True, removal_scale=2.0
        )
        np.testing.assert_array_equal(top.rows, oracle.rows)
        np.testing.assert_array_equal(top.attribute_scores, oracle.attribute_scores)
        zeros += int(np.sum(np.asarray(index.attributes)[:, remove[0]] >= 0.5))
    assert zeros > 0  # some rows' unwanted factor is exactly 0
    index.close()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_soft_topk_equals_brute_force(synthetic, name):
    config = CONFIGS[name]
    cat, index = synthetic
    found = total = 0
    paths = set()
    for q, add, remove in _queries(cat, 30, seed=5):
        top = soft_filter_topk(index, q, 10, add, remove, config=config)
        paths.add((top.stats["path"], top.stats["rounds"] > 1))
        oracle = exact_topk(index.vectors, index.attributes, q, 10, add, remove, soft=True)
        if index.backend.name == "exact":
            np.testing.assert_array_equal(top.rows, oracle.rows)
            np.testing.assert_allclose(top.scores, oracle.scores, rtol=1e-6)
        found += len(set(top.rows.tolist()) & set(oracle.rows.tolist()))
        total += 10
    assert found / total >= 0.99
    if name == "default":
        assert {p for p, _ in paths} <= {"coarse", "coarse+list", "coarse+scan", "coarse+columns"}
    if name in ("coarse-list", "coarse-graph"):
        assert "coarse+list" in {p for p, _ in paths}


def test_soft_topk_with_a_hard_filter(synthetic):
    cat, index = synthetic
    colour = int(cat.groups[0][0])
    for must, must_not in (([colour], []), ([], [colour])):
        allowed = hard_filter_mask(index, must, must_not)
        for q, add, remove in _queries(cat, 10, seed=9):
            top = soft_filter_topk(index, q, 10, add, remove, allowed=allowed)
            oracle = exact_topk(
                index.vectors, index.attributes, q, 10, add, remove, soft=True, allowed=allowed
            )
            assert np.all(allowed.mask[top.rows])
            if index.backend.name == "exact" or allowed.mask.mean() < 0.05:
                np.testing.assert_array_equal(top.rows, oracle.rows)


@pytest.mark.parametrize(
    "config",
    [
        TopKConfig(),  # the catalog's 5 % threshold: the small masks only
        TopKConfig(coarse_rows=8, scan_fraction=1.0),  # every mask, few rows scored first
    ],
)
def test_hard_filter_topk_equals_brute_force(synthetic, config):
    """Exact top-k by cosine among the allowed rows, whether the coarse cone bounds pick the
    rows to score (a selective filter) or the backend searches."""
    cat, index = synthetic
    words = [int(cat.groups[g][0]) for g in range(3)]
    masks = [([w], []) for w in words] + [([words[0], words[1]], [words[2]]), ([], [words[0]])]
    pruned = 0
    for must, must_not in masks:
        allowed = hard_filter_mask(index, must, must_not)
        for q, _, _ in _queries(cat, 8, seed=13):
            cos, rows = hard_filter_topk(index, q, 10, allowed, config)
            oracle = exact_topk(
                index.vectors, index.attributes, q, 10, [], [], soft=False, allowed=allowed
            )
            if allowed.rows is not None and allowed.rows.shape[0] <= config.scan_fraction * 5000:
                pruned += 1  # the coarse path: exact with every backend
                np.testing.assert_array_equal(rows, oracle.rows)
                np.testing.assert_allclose(cos, oracle.scores, rtol=1e-6)
            elif index.backend.name == "exact":
                np.testing.assert_array_equal(rows, oracle.rows)
            assert np.all(allowed.mask[rows])
    if config.scan_fraction == 1.0:
        assert pruned == len(masks[:-1]) * 8  # every must-word mask took the coarse path


def test_hard_filter_mask(synthetic):
    cat, index = synthetic
    offsets, words = cat.metadata
    bags = [set(words[offsets[i] : offsets[i + 1]].tolist()) for i in range(len(offsets) - 1)]
    a, b, c = int(cat.groups[0][0]), int(cat.groups[1][0]), int(cat.groups[2][0])
    mask = hard_filter_mask(index, [a, b], [c])
    expected = [a in bag and b in bag and c not in bag for bag in bags]
    np.testing.assert_array_equal(mask.mask, expected)
    assert hard_filter_mask(index, [], []) is None
    # the rows a must filter carries are its true rows; its mask is a plain array
    for must, must_not in (([a], []), ([a, b], [c]), ([a], [a])):
        m = hard_filter_mask(index, must, must_not)
        np.testing.assert_array_equal(m.rows, np.flatnonzero(m.mask))
        assert type(m.mask) is np.ndarray and m.count == np.count_nonzero(m.mask)


def test_hard_filter_mask_with_synonym_groups(synthetic):
    """A must entry that is a group (a word and its synonyms) needs one of its words."""
    cat, index = synthetic
    offsets, words = cat.metadata
    bags = [set(words[offsets[i] : offsets[i + 1]].tolist()) for i in range(len(offsets) - 1)]
    a, a2 = int(cat.groups[0][0]), int(cat.groups[0][1])
    b, c = int(cat.groups[1][0]), int(cat.groups[2][0])
    mask = hard_filter_mask(index, [(a, a2), b], [c])
    expected = [(a in bag or a2 in bag) and b in bag and c not in bag for bag in bags]
    np.testing.assert_array_equal(mask.mask, expected)
    assert mask.must == (b,) and mask.must_any == ((a, a2),) and mask.must_not == (c,)
    np.testing.assert_array_equal(mask.rows, np.flatnonzero(mask.mask))
    # a group of one word is that word
    one = hard_filter_mask(index, [(a,)], [])
    np.testing.assert_array_equal(one.mask, hard_filter_mask(index, [a], []).mask)
    # the group covers more items than its first word alone
    assert mask.count >= hard_filter_mask(index, [a, b], [c]).count


def test_fewer_allowed_items_than_k(far_down):
    index, query = far_down
    allowed = hard_filter_mask(index, [0], [])
    top = soft_filter_topk(index, query, 10, [0], [], allowed=allowed)
    assert top.rows.tolist() == [700]


@st.composite
def _cases(draw):
    n = draw(st.integers(12, 160))
    dim = draw(st.integers(2, 6))
    vocab = draw(st.integers(2, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    # coarse probabilities: many ties, exact zeros and ones
    levels = draw(st.sampled_from([3, 11, 1000]))
    attributes = (rng.integers(0, levels, (n, vocab)) / (levels - 1)).astype(np.float16)
    words = draw(st.permutations(range(vocab)))
    n_add = draw(st.integers(0, min(2, vocab)))
    n_remove = draw(st.integers(0, min(2, vocab - n_add)))
    add, remove = list(words[:n_add]), list(words[n_add : n_add + n_remove])
    query = rng.standard_normal(dim).astype(np.float32)
    query /= max(float(np.linalg.norm(query)), 1e-6)
    k = draw(st.integers(1, 15))
    allowed = rng.random(n) < draw(st.sampled_from([0.05, 0.5, 1.0]))
    config = draw(
        st.sampled_from(
            [
                TopKConfig(),
                TopKConfig(coarse_rows=1, block=1),
                TopKConfig(coarse_rows=1, block=2, coarse_graph_depth=3),
                TopKConfig(coarse_rows=3, block=2, scan_fraction=0.0, scan_rows=4),
                TopKConfig(coarse_rows=40, block=1, cluster_head=1),
            ]
        )
    )
    clusters = draw(st.sampled_from([None, 1, 2, 7, n // 3, n]))
    power = draw(st.sampled_from([1.0, 1.0, 2.5, 8.0]))
    weight = draw(st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0]))  # the index's metadata weight
    return (
        power,
        vectors,
        attributes,
        add,
        remove,
        query,
        k,
        allowed,
        config,
        draw(st.booleans()),
        clusters,
        weight,
    )


@settings(max_examples=40, deadline=None)
@given(case=_cases())
def test_soft_topk_is_exact_on_generated_catalogs(case):
    power, vectors, attributes, add, remove, query, k, allowed, config, filtered, *rest = case
    clusters, weight = rest
    scale = TextFusion("blend", weight).removal_scale
    bags = [[int(np.argmax(row))] for row in attributes]
    with tempfile.TemporaryDirectory() as tmp:
        write_index_arrays(
            Path(tmp) / "idx",
            vectors,
            attributes,
            metadata=csr_from_bags(bags),
            coarse_clusters=clusters,
            manifest={"metadata_weight": weight},
        )
        index = Index.load(Path(tmp) / "idx")
        mask = RowFilter.of_mask(allowed) if filtered else None
        top = soft_filter_topk(
            index, query, k, add, remove, allowed=mask, config=config, cosine_power=power
        )
        oracle = exact_topk(
            index.vectors, index.attributes, query, k, add, remove, soft=True, allowed=mask,
            cosine_power=power, removal_scale=scale,
        )  # fmt: skip
        index.close()
    # the same scores (ties may resolve differently only through float rounding of two paths)
    np.testing.assert_allclose(top.scores, oracle.scores, rtol=1e-5, atol=1e-6)
    if mask is not None:
        assert np.all(mask.mask[top.rows])
    assert len(set(top.rows.tolist())) == len(top.rows)
    # every returned row's true score is at least the oracle's k-th
    p = attributes.astype(np.float32)
    true = np.clip((1 + index.vectors[top.rows] @ query) / 2, 0, 1) ** power
    for w in add:
        true = true * p[top.rows, w]
    for w in remove:
        true = true * np.maximum(1 - scale * p[top.rows, w], 0)
    if oracle.scores.size:
        assert np.all(true >= oracle.scores[-1] - 1e-5)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 300),
    dim=st.integers(2, 24),
    clusters=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
)
def test_coarse_bounds_hold_for_every_row(n, dim, clusters, seed):
    """The cone bound is above every member's cosine and the p bounds hold per cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, dim)).astype(np.float32)
    vectors = centres[rng.integers(3, size=n)] + rng.standard_normal((n, dim)).astype(
        np.float32
    ) * rng.choice([0.01, 0.3, 3.0])
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)
    vectors = vectors.astype(np.float32)
    attributes = np.asfortranarray(rng.random((n, 3)).astype(np.float16))
    with tempfile.TemporaryDirectory() as tmp:
        build_coarse(vectors, attributes, tmp, clusters=clusters)
        coarse = CoarseIndex.load(tmp)
    assert coarse.count == n
    assert sorted(coarse.rows.tolist()) == list(range(n))
    for _ in range(5):
        q = rng.standard_normal(dim).astype(np.float32)
        q /= max(float(np.linalg.norm(q)), 1e-6)
        ub = coarse.cosine_bounds(q)
        cos = vectors @ q
        assert np.all(cos <= ub[coarse.assign] + 1e-6)
        row_ub = coarse.row_cosine_bounds(coarse.query_angles(q), np.arange(n))
        assert np.all(cos <= row_ub + 1e-6)
    # the list-aligned copies the top-k reads instead of gathering per row
    list_rows = rng.integers(n, size=50).astype(np.int32)
    coarse.attach_lists(list_rows)
    np.testing.assert_array_equal(coarse.list_cluster, coarse.assign[list_rows])
    np.testing.assert_array_equal(coarse.list_angle, coarse.angle[list_rows])
    angles = coarse.query_angles(q)
    np.testing.assert_array_equal(
        coarse.row_cosine_bounds(angles, list_rows, coarse.list_cluster, coarse.list_angle),
        coarse.row_cosine_bounds(angles, list_rows),
    )
    for j in range(coarse.centroids.shape[0]):
        members = coarse.members(j)
        assert np.all(coarse.assign[members] == j)
        if members.size:
            np.testing.assert_array_equal(coarse.pmax[j], attributes[members].max(axis=0))
            np.testing.assert_array_equal(coarse.pmin[j], attributes[members].min(axis=0))
