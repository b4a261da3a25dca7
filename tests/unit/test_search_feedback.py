"""Relevance feedback's pure parts: the Rocchio move and dropping the rejected rows."""

from __future__ import annotations

import numpy as np
import pytest

from stylesearch.search import Query, QueryError
from stylesearch.search.feedback import MAX_FEEDBACK_ITEMS, drop_rows, move_query
from stylesearch.search.topk import TopK


def test_move_query_by_hand():
    q = np.array([1.0, 0.0, 0.0])
    like = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    unlike = np.array([[0.6, 0.8, 0.0]])
    # q + 0.5 * (0, .5, .5) - 0.75 * (.6, .8, 0) = (0.55, -0.35, 0.25)
    expected = np.array([0.55, -0.35, 0.25]) / np.linalg.norm([0.55, -0.35, 0.25])
    got = move_query(q, like, unlike, 0.5, 0.75)
    assert got.dtype == np.float32 and got == pytest.approx(expected, abs=1e-6)
    assert np.linalg.norm(got) == pytest.approx(1.0)


def test_move_query_without_items_is_the_unit_query():
    q = np.array([3.0, 4.0])
    assert move_query(q, np.zeros((0, 2)), np.zeros((0, 2))) == pytest.approx([0.6, 0.8])


def test_moving_away_from_the_query_itself_cancels_it_out():
    q = np.array([0.0, 1.0])
    with pytest.raises(ValueError, match="zero"):
        move_query(q, np.zeros((0, 2)), q[None], unlike_weight=1.0)
    with pytest.raises(ValueError, match="dimensions"):
        move_query(q, np.ones((1, 3)), np.zeros((0, 2)))


def test_drop_rows_keeps_the_order_and_cuts_to_k():
    top = TopK(np.array([5, 3, 9, 1]), np.array([0.9, 0.8, 0.7, 0.6]), np.zeros(4), np.ones(4))
    out = drop_rows(top, [3], 2)
    assert out.rows.tolist() == [5, 9] and out.scores.tolist() == pytest.approx([0.9, 0.7])


def test_query_validates_its_feedback():
    Query(item_id="a", like=["b"], unlike=["c"]).validate()
    for bad in (
        Query(item_id="a", like=["b"], unlike=["b"]),
        Query(item_id="a", unlike=["a"]),
        Query(item_id="a", unlike=[str(i) for i in range(MAX_FEEDBACK_ITEMS + 1)]),
    ):
        with pytest.raises(QueryError):
            bad.validate()
