"""The paired bootstrap of relative MM gains against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stylesearch.evaluation.significance import (
    bootstrap_report,
    metric_interval,
    relative_gain,
)

A = np.array([[0.4, 1.0], [0.6, 1.0]])  # MM from the means: sqrt(0.5 x 1)
B = np.array([[0.25, 1.0], [0.25, 1.0]])  # sqrt(0.25 x 1) = 0.5


def test_gain_on_all_queries_is_the_ratio_of_the_metrics() -> None:
    out = relative_gain(A, B)
    assert out is not None
    assert out["gain"] == pytest.approx(math.sqrt(0.5) / 0.5 - 1)  # 0.41421
    assert out["low"] <= out["gain"] <= out["high"]


def test_interval_from_given_samples_by_hand() -> None:
    # the three samples give gains sqrt(0.4)/0.5 - 1, sqrt(0.6)/0.5 - 1 and sqrt(0.5)/0.5 - 1
    samples = np.array([[0, 0], [1, 1], [0, 1]])
    g = sorted([math.sqrt(0.4) / 0.5 - 1, math.sqrt(0.6) / 0.5 - 1, math.sqrt(0.5) / 0.5 - 1])
    out = relative_gain(A, B, level=0.5, samples=samples)
    assert out is not None
    # numpy's linear percentiles: the 25th lies halfway between the first two, the 75th
    # halfway between the last two
    assert out["low"] == pytest.approx((g[0] + g[1]) / 2)
    assert out["high"] == pytest.approx((g[1] + g[2]) / 2)


def test_identical_lists_gain_nothing_with_no_spread() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(0.1, 1.0, size=(50, 2))
    assert relative_gain(a, a.copy()) == {"gain": 0.0, "low": 0.0, "high": 0.0}


def test_a_list_better_on_every_query_has_an_interval_above_zero() -> None:
    rng = np.random.default_rng(4)
    b = rng.uniform(0.2, 0.6, size=(200, 2))
    a = b * np.array([1.3, 1.0])  # V 30 % higher everywhere: MM sqrt(1.3) - 1 = 14 % higher
    out = relative_gain(a, b)
    assert out is not None
    assert out["gain"] == pytest.approx(math.sqrt(1.3) - 1)
    assert 0 < out["low"] <= out["gain"] <= out["high"]


def test_same_seed_same_interval_and_level_widens_it() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.uniform(size=(80, 2)), rng.uniform(size=(80, 2))
    first, again = relative_gain(a, b, seed=1), relative_gain(a, b, seed=1)
    assert first == again
    narrow = relative_gain(a, b, seed=1, level=0.5)
    assert first is not None and narrow is not None
    assert first["low"] <= narrow["low"] <= narrow["high"] <= first["high"]


def test_no_ratio_when_the_other_list_scores_zero() -> None:
    zero = np.array([[0.0, 1.0], [0.0, 0.5]])
    assert relative_gain(A, zero) is None
    # a sample of only the zero query has no ratio and is left out of the interval
    b = np.array([[0.0, 1.0], [0.25, 1.0]])
    out = relative_gain(A, b, level=0.5, samples=np.array([[0, 0], [1, 1]]))
    assert out is not None
    assert out["low"] == out["high"] == pytest.approx(math.sqrt(0.6) / 0.5 - 1)


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        (np.ones((3, 2)), np.ones((2, 2)), 0.95),
        (np.ones(3), np.ones(3), 0.95),
        (np.ones((0, 2)), np.ones((0, 2)), 0.95),
        (np.ones((3, 2)), np.ones((3, 2)), 1.0),
    ],
)
def test_bad_inputs_are_refused(a: np.ndarray, b: np.ndarray, level: float) -> None:
    with pytest.raises(ValueError):
        relative_gain(a, b, level=level)


def _rows(system: str, method: str, values: list[tuple[float, ...]]) -> list[dict]:
    keys = ("v", "t", "v_shape", "t_truth")[: len(values[0])]
    return [
        {"system": system, "method": method, "query_id": f"q{i}"} | dict(zip(keys, v, strict=True))
        for i, v in enumerate(values)
    ]


def test_metric_interval_by_hand() -> None:
    # the three samples' MMs: sqrt(0.4), sqrt(0.6), sqrt(0.5)
    samples = np.array([[0, 0], [1, 1], [0, 1]])
    out = metric_interval(A, level=0.5, samples=samples)
    assert out["value"] == pytest.approx(math.sqrt(0.5))
    assert out["low"] == pytest.approx((math.sqrt(0.4) + math.sqrt(0.5)) / 2)
    assert out["high"] == pytest.approx((math.sqrt(0.5) + math.sqrt(0.6)) / 2)
    constant = metric_interval(np.full((30, 2), 0.36))
    assert [constant[k] for k in ("value", "low", "high")] == pytest.approx([0.36] * 3)


def test_bootstrap_report_over_every_other_list() -> None:
    per_query = (
        _rows("main", "combined", [(0.4, 1.0, 0.8, 1.0), (0.6, 1.0, 0.8, 1.0)])
        + _rows("main", "filter", [(0.25, 1.0, 0.4, 1.0), (0.25, 1.0, 0.4, 1.0)])
        + _rows("off-the-shelf", "keyword-filter", [(0.5, 1.0), (0.5, 1.0)])  # no shape judge
    )
    out = bootstrap_report(per_query, "main", draws=500, level=0.9)
    assert out is not None
    assert (out["system"], out["method"], out["draws"], out["level"]) == (
        "main", "combined", 500, 0.9,
    )  # fmt: skip
    assert out["own"]["mm"]["value"] == pytest.approx(math.sqrt(0.5))
    assert out["own"]["mm_shape"]["value"] == pytest.approx(math.sqrt(0.8))
    rows = out["gains"]
    assert [(r["system"], r["method"]) for r in rows] == [
        ("main", "filter"),
        ("off-the-shelf", "keyword-filter"),
    ]
    assert rows[0]["mm"]["gain"] == pytest.approx(math.sqrt(0.5) / 0.5 - 1)
    # V-shape twice the other's on both queries: every sample gains sqrt(2) - 1
    shape = rows[0]["mm_shape"]
    assert [shape[k] for k in ("gain", "low", "high")] == pytest.approx([math.sqrt(2) - 1] * 3)
    assert rows[1]["mm"]["gain"] == pytest.approx(0.0)  # mean V 0.5 against 0.5
    assert rows[1]["mm_shape"] is None
    assert bootstrap_report(per_query, "main", "text") is None


def test_a_list_over_some_of_the_queries_is_compared_on_those() -> None:
    per_query = (
        _rows("main", "combined", [(0.4, 1.0), (0.6, 1.0), (0.2, 1.0)])
        + _rows("main", "filter", [(0.25, 1.0), (0.25, 1.0)])  # q0 and q1 only
        + [{"system": "oracle", "method": "o", "query_id": "elsewhere", "v": 1.0, "t": 1.0}]
    )
    out = bootstrap_report(per_query, "main", draws=200)
    assert out is not None
    (row,) = out["gains"]  # the list sharing no query is left out
    assert (row["method"], row["queries"]) == ("filter", 2)
    assert row["mm"]["gain"] == pytest.approx(math.sqrt(0.5) / 0.5 - 1)  # over q0 and q1
    assert out["own"]["mm"]["value"] == pytest.approx(math.sqrt(0.4))  # over all three
