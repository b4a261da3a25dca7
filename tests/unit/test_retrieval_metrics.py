import math

import numpy as np
import pytest

from stylesearch.retrieval_metrics import (
    average_precision,
    mean_average_precision,
    recall_at_k,
)


def test_recall_at_k_hand_computed():
    # query 0: true match ranks first; query 1: second (0.9 > 0.5); query 2: third
    sim = np.array(
        [
            [0.9, 0.1, 0.2],
            [0.9, 0.5, 0.1],
            [0.8, 0.7, 0.3],
        ]
    )
    assert recall_at_k(sim, 1) == pytest.approx(1 / 3)
    assert recall_at_k(sim, 2) == pytest.approx(2 / 3)
    assert recall_at_k(sim, 3) == pytest.approx(1.0)
    assert recall_at_k(sim, 10) == pytest.approx(1.0)


def test_recall_ties_are_pessimistic():
    sim = np.zeros((4, 4))
    # every candidate ties with the true one: the true match ranks last
    assert recall_at_k(sim, 1) == 0.0
    assert recall_at_k(sim, 4) == 1.0


def test_recall_rejects_bad_shapes():
    with pytest.raises(ValueError):
        recall_at_k(np.zeros((2, 3)), 1)
    with pytest.raises(ValueError):
        recall_at_k(np.zeros((2, 2)), 0)


def test_average_precision_hand_computed():
    # ranking by score: a(+), b(-), c(+), d(-) -> precisions at hits 1/1 and 2/3
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    labels = np.array([1, 0, 1, 0])
    assert average_precision(scores, labels) == pytest.approx((1 + 2 / 3) / 2)
    # perfect ranking
    assert average_precision(np.array([0.2, 0.9]), np.array([0, 1])) == 1.0
    # worst ranking: positive last of 4 -> 1/4
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([0, 0, 0, 1])) == 0.25
    assert math.isnan(average_precision(np.array([0.1, 0.2]), np.array([0, 0])))


def test_mean_average_precision_skips_columns_without_positives():
    scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.9, 0.4]])
    labels = np.array([[1, 0, 0], [0, 0, 0]])
    # column 0: AP 1.0; column 1 and 2 have no positive -> excluded
    value, used = mean_average_precision(scores, labels)
    assert used == 1
    assert value == pytest.approx(1.0)
    labels2 = np.array([[1, 0, 0], [0, 1, 0]])
    # column 1: positive is item 1 with score 0.9, ranked first -> 1.0
    assert mean_average_precision(scores, labels2) == (pytest.approx(1.0), 2)
    labels3 = np.array([[0, 1, 0], [1, 0, 0]])
    # both columns: positive ranked second of two -> 0.5 each
    assert mean_average_precision(scores, labels3)[0] == pytest.approx(0.5)
