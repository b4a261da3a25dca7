"""How sure a lead is: ``combined``'s relative gain over every other list, with a paired bootstrap.

The report's MM is ``sqrt(mean V x mean T)`` over the queries, so a difference of 0.003 between
two methods may be the draw of queries rather than the methods. Here every comparison is
resampled the same way: ``draws`` samples of the queries (with replacement, the same samples for
both lists, since both answered the same queries), each giving the relative gain
``MM_a / MM_b - 1`` from that sample's means; the interval is the central ``level`` share of
those gains (percentile bootstrap). An interval that holds 0 says the queries cannot tell the
two lists apart; one whose lower end is above 0.1 says that ``a``'s 10 % lead over ``b`` does
not rest on this draw of queries.

The same resamples also give ``combined``'s own MM an interval (:func:`metric_interval`), to
read an absolute target such as "MM-shape >= 0.85" against. Pure functions on numpy arrays;
the report calls :func:`bootstrap_report` on ``per_query``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["DRAWS", "LEVEL", "bootstrap_report", "metric_interval", "relative_gain"]

DRAWS = 2000
LEVEL = 0.95
# (label, per-query nDCG keys whose means multiply under the square root)
PAIRS = (("mm", ("v", "t")), ("mm_shape", ("v_shape", "t_truth")))


def _resamples(n: int, draws: int, seed: int) -> np.ndarray:
    """``draws`` x ``n`` query indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(draws, n))


def _mm_of_means(parts: np.ndarray, samples: np.ndarray | None = None) -> np.ndarray:
    """``sqrt`` of the product of the column means of ``parts`` (n x 2), over all rows or over
    each row of query indices in ``samples`` (draws x n)."""
    means = parts.mean(axis=0) if samples is None else parts[samples].mean(axis=1)
    return np.sqrt(means[..., 0] * means[..., 1])


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` share of ``values`` (finite ones only): its two ends."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values[np.isfinite(values)], [tail, 100 - tail])
    return float(low), float(high)


def _checked(level: float, *arrays: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(x, dtype=np.float64) for x in arrays]
    shape = out[0].shape
    if any(x.shape != shape for x in out) or len(shape) != 2 or shape[1] != 2 or shape[0] == 0:
        raise ValueError(f"need n x 2 arrays of one n >= 1, not {[x.shape for x in out]}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    return out


def metric_interval(
    a: np.ndarray,
    *,
    draws: int = DRAWS,
    level: float = LEVEL,
    seed: int = 0,
    samples: np.ndarray | None = None,
) -> dict[str, float]:
    """``sqrt(mean x mean)`` of ``a`` (n x 2, one row per query) and its bootstrap interval:
    ``{"value", "low", "high"}``; ``samples`` as for :func:`relative_gain`."""
    (a,) = _checked(level, a)
    if samples is None:
        samples = _resamples(len(a), draws, seed)
    low, high = _interval(_mm_of_means(a, samples), level)
    return {"value": float(_mm_of_means(a)), "low": low, "high": high}


def relative_gain(
    a: np.ndarray,
    b: np.ndarray,
    *,
    draws: int = DRAWS,
    level: float = LEVEL,
    seed: int = 0,
    samples: np.ndarray | None = None,
) -> dict[str, float] | None:
    """``a``'s relative gain over ``b`` on ``sqrt(mean x mean y)`` and its bootstrap interval.

    Args:
        a, b: ``n x 2`` arrays, one row per query (the same queries, in the same order), of
            the two nDCGs whose means the metric multiplies (V and T for the paper's MM).
        draws, level, seed: the bootstrap; ``samples`` (draws x n query indices) replaces the
            draws so that several comparisons share them.

    Returns:
        ``{"gain", "low", "high"}`` (``MM_a / MM_b - 1`` on all queries, and the interval's
        ends), or None when ``b``'s metric is 0 on all queries (no ratio to take). A sample
        where ``b`` scores 0 has no ratio and is left out of the interval.
    """
    a, b = _checked(level, a, b)
    whole_b = float(_mm_of_means(b))
    if whole_b == 0:
        return None
    if samples is None:
        samples = _resamples(len(a), draws, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = _interval(_mm_of_means(a, samples) / _mm_of_means(b, samples) - 1, level)
    return {"gain": float(_mm_of_means(a)) / whole_b - 1, "low": low, "high": high}


def bootstrap_report(
    per_query: Sequence[Mapping[str, Any]],
    system: str,
    method: str = "combined",
    *,
    draws: int = DRAWS,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any] | None:
    """``system``'s ``method``: its own MM and MM-shape, and its gain over every other list.

    Returns None when ``system`` has no ``method`` rows, else ``{"system", "method", "draws",
    "level", "own": {"mm": ..., "mm_shape": ...}, "gains": [...]}``: ``own`` as
    :func:`metric_interval` gives it, and one ``gains`` row per other (system, method) of
    ``per_query``, ``{"system", "method", "mm", "mm_shape"}``, as :func:`relative_gain` gives
    them, with ``"queries"``: how many queries the two share. A list that answered only some of
    the queries (the oracle skips a query the truth cannot judge) is compared on those it
    shares; none shared, it is left out. MM-shape is None where the rows lack the shape judge
    or the truth. Lists over the same queries share the same resamples.
    """
    lists: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for r in per_query:
        lists.setdefault((r["system"], r["method"]), {})[r["query_id"]] = r
    mine = lists.get((system, method))
    if not mine:
        return None
    query_ids = sorted(mine)
    samples = _resamples(len(query_ids), draws, seed)

    def parts(
        rows: Mapping[str, Mapping[str, Any]], keys: tuple[str, str], ids: Sequence[str]
    ) -> np.ndarray | None:
        values = [[rows[q].get(k) for k in keys] for q in ids]
        if any(v is None for row in values for v in row):
            return None
        return np.array(values, dtype=np.float64)

    own = {}
    for label, keys in PAIRS:
        a = parts(mine, keys, query_ids)
        own[label] = None if a is None else metric_interval(a, level=level, samples=samples)
    gains = []
    for (other_system, other_method), rows in lists.items():
        shared = sorted(set(rows) & set(mine))
        if (other_system, other_method) == (system, method) or not shared:
            continue
        drawn = samples if len(shared) == len(query_ids) else _resamples(len(shared), draws, seed)
        entry: dict[str, Any] = {
            "system": other_system, "method": other_method, "queries": len(shared),
        }  # fmt: skip
        for label, keys in PAIRS:
            a, b = parts(mine, keys, shared), parts(rows, keys, shared)
            entry[label] = (
                None if a is None or b is None
                else relative_gain(a, b, level=level, samples=drawn)
            )  # fmt: skip
        gains.append(entry)
    return {
        "system": system, "method": method, "draws": draws, "level": level,
        "own": own, "gains": gains,
    }  # fmt: skip
