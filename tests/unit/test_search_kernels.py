"""The compiled loops of the exact soft-filter top-k against plain numpy and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from stylesearch.index.coarse import COS_SLACK
from stylesearch.search.kernels import (
    FLOAT16_TABLE,
    _may_reach,
    _needed_factor,
    compiled,
    list_bounds,
    merge_best,
    survivors,
)
from stylesearch.search.scoring import may_reach, needed_factor, rescale_cosine
from stylesearch.search.topk import attribute_probs


def test_float16_table_is_the_conversion():
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    values = bits.view(np.float16).astype(np.float32)
    finite = np.isfinite(values)
    np.testing.assert_array_equal(FLOAT16_TABLE[bits[finite]], values[finite])
    assert np.isnan(FLOAT16_TABLE[bits[np.isnan(values)]]).all()


_DTYPES = (np.int64, np.float32, np.float32, np.float32)


def _merge(best, new, k):
    rows, cos, p, scores = (np.asarray(a, dt) for a, dt in zip(best, _DTYPES, strict=True))
    n_rows, n_cos, n_p, n_scores = (np.asarray(a, dt) for a, dt in zip(new, _DTYPES, strict=True))
    return merge_best(rows, cos, p, scores, k, n_rows, n_cos, n_p, n_scores)


def test_merge_best_by_hand():
    best = ([4, 9, 2], [0.4, 0.9, 0.2], [1.0, 1.0, 1.0], [0.8, 0.7, 0.6])
    # row 9 again (ignored), row 1 ties 0.7 (ranks before row 9), row 5 below the 3rd (0.6)
    new = ([9, 1, 5, 3], [0.9, 0.1, 0.5, 0.3], [1.0, 0.5, 0.5, 0.5], [0.7, 0.7, 0.5, 0.65])
    rows, cos, p, scores = _merge(best, new, 3)
    assert rows.tolist() == [4, 1, 9]
    np.testing.assert_allclose(scores, [0.8, 0.7, 0.7])
    np.testing.assert_allclose(cos, [0.4, 0.1, 0.9])
    np.testing.assert_allclose(p, [1.0, 0.5, 1.0])


def test_merge_best_fills_up_then_keeps_k():
    rows, cos, p, scores = _merge(([], [], [], []), ([7, 3], [0.1, 0.2], [1, 1], [0.5, 0.5]), 3)
    assert rows.tolist() == [3, 7]  # tie: lower row first
    rows, *_ = _merge(
        (rows, cos, p, scores), ([1, 2, 8], [0.0, 0.0, 0.0], [1, 1, 1], [0.9, 0.1, 0.5]), 3
    )
    assert rows.tolist() == [1, 3, 7]


def _case(seed: int, m_add: int, m_remove: int, lead: int, power: float, filtered: bool, scale=1.0):
    """A random block of candidates with true per-cluster caps, and numpy's answer; ``scale``:
    the removal scale ``r`` of unwanted words' factors ``max(0, 1 - r p)``."""
    rng = np.random.default_rng(seed)
    n_rows, vocab, n_clusters, n = 400, 6, 7, 300
    attributes = np.asfortranarray(rng.random((n_rows, vocab)).astype(np.float16))
    words = rng.choice(vocab, m_add + m_remove, replace=False).astype(np.int64)
    wanted = np.arange(words.shape[0]) < m_add
    rows = rng.choice(n_rows, n, replace=False).astype(np.int32)
    assign = rng.integers(0, n_clusters, n_rows)
    clusters = assign[rows].astype(np.int16)
    row_angles = rng.uniform(0.1, 0.8, n).astype(np.float32)
    angles = rng.uniform(0.0, 1.5, n_clusters)
    scanned = rng.random(n_clusters) < 0.2
    allowed = rng.random(n_rows) < 0.7 if filtered else np.zeros(0, bool)
    columns = attributes[:, words].astype(np.float32).T
    factor = np.where(wanted[:, None], columns, np.maximum(1 - scale * columns, 0))
    caps = np.zeros((words.shape[0], n_clusters))
    for c in range(n_clusters):  # the clusters' true maxima of every factor
        members = assign == c
        if members.any():
            caps[:, c] = factor[:, members].max(axis=1)
    limits = np.ones(words.shape[0])
    lead_values = np.zeros(0, np.uint16)
    if lead >= 0:
        lead_values = attributes[rows, words[lead]].view(np.uint16)
        limits[lead] = 0.3  # the lead list's own limit must not apply to its own rows
    # the row cones, rescaled: per cluster the largest of its members (a sound cluster bound)
    gap = angles[clusters] - row_angles.astype(np.float64)
    row_cos = np.where(gap <= 0, 1.0, np.cos(np.maximum(gap, 0.0)) + COS_SLACK)
    u_row = rescale_cosine(row_cos, power).astype(np.float64)
    u_cap = 0.9
    u_row = np.minimum(u_row, u_cap)
    u = np.full(n_clusters, u_cap)
    add = [int(w) for w in words[:m_add]]
    remove = [int(w) for w in words[m_add:]]
    p = attribute_probs(attributes, rows, add, remove, scale)
    s_k = float(np.quantile(p * u_row, 0.7))
    keep = may_reach(p, s_k, u_row) & ~scanned[clusters]
    if filtered:
        keep &= allowed[rows]
    args = (
        rows, clusters, row_angles, lead, lead_values, attributes.view(np.uint16), words,
        wanted, caps, limits, u, angles, u_cap, power, s_k, scanned, np.float32(scale), allowed,
        FLOAT16_TABLE,
    )  # fmt: skip
    return args, rows[keep], p[keep]


@pytest.mark.parametrize(
    "m_add,m_remove,lead,power,filtered,scale",
    [(1, 0, 0, 1.0, False, 1.0), (2, 1, 1, 1.0, True, 1.0), (2, 0, -1, 4.0, False, 1.0),
     (0, 2, -1, 1.0, True, 1.0), (3, 2, 0, 2.0, False, 1.0), (2, 1, 1, 1.0, True, 2.0),
     (0, 2, -1, 4.0, False, 1.5)],
)  # fmt: skip
def test_survivors_equal_numpy(m_add, m_remove, lead, power, filtered, scale):
    for seed in range(5):
        args, want_rows, want_p = _case(seed, m_add, m_remove, lead, power, filtered, scale)
        n = args[0].shape[0]
        out_rows, out_p = np.empty(n, np.int64), np.empty(n, np.float32)
        count = survivors(*args, out_rows, out_p)
        np.testing.assert_array_equal(out_rows[:count], want_rows)
        np.testing.assert_array_equal(out_p[:count], want_p)  # the oracle's p, bit for bit


def test_compiled_bound_tests_are_scorings():
    """The kernel's bound tests are scoring.py's own, compiled: the same answers, bit for bit,
    at and around the slack's edge."""
    rng = np.random.default_rng(5)
    s_k = rng.uniform(1e-4, 1.0, 200)
    scale = rng.uniform(0.0, 1.0, 200)
    rest = np.concatenate([rng.uniform(0.0, 1.0, 199), [0.0]])
    edge = needed_factor(s_k[0], 1.0)
    for bound in (np.nextafter(edge, 0.0), edge, np.nextafter(edge, 2.0)):
        assert _may_reach(bound, s_k[0], 1.0) == may_reach(bound, s_k[0])
    for i in range(200):
        assert _needed_factor(s_k[i], rest[i]) == needed_factor(s_k[i], rest[i])
        bound = s_k[i] / max(scale[i], 1e-3) * rng.uniform(0.99, 1.01)
        assert _may_reach(bound, s_k[i], scale[i]) == may_reach(bound, s_k[i], scale[i])


def test_survivors_use_the_caps():
    """A cap of 0 (no row of the cluster can have the word) drops every row of it unread."""
    args, _, _ = _case(0, 2, 0, 0, 1.0, False)
    caps = args[8].copy()
    caps[1, :] = 0.0
    args = args[:8] + (caps,) + args[9:]
    out_rows, out_p = np.empty(300, np.int64), np.empty(300, np.float32)
    assert survivors(*args, out_rows, out_p) == 0


def test_list_bounds_equal_numpy():
    rng = np.random.default_rng(3)
    m, n_clusters, n_lists = 4, 50, 3
    u = rng.random(n_clusters)
    caps = rng.random((m, n_clusters))
    limits = np.array([0.5, 0.9, 1.0, 1.0])
    floors = np.array([0.2, 0.4, 0.3])
    scanned = rng.random(n_clusters) < 0.3
    unread, rest, at_floor = list_bounds(u, caps, limits, n_lists, floors, scanned)
    cap = np.minimum(caps, limits[:, None])
    live = ~scanned
    assert unread == pytest.approx((u * cap.prod(axis=0))[live].max())
    for i in range(n_lists):
        others = u * np.delete(cap, i, axis=0).prod(axis=0)
        assert rest[i] == pytest.approx(others[live].max())
        assert at_floor[i] == pytest.approx((others * np.minimum(caps[i], floors[i]))[live].max())


def test_compiled_without_a_cache_location(monkeypatch):
    """A read-only install (no place for numba's cache) still imports and runs the loops."""
    from numba.core import caching

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])

    def twice(x):
        return 2 * x

    with pytest.raises(RuntimeError):  # what numba itself does
        njit(cache=True)(twice)
    assert compiled(twice)(21) == 42
