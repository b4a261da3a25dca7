"""``stylesearch tune``: choose search settings on validation queries, record them in the index.

Each method that has a knob is tuned on its own grid, with the same judges as ``stylesearch
eval`` (:mod:`stylesearch.evaluation.protocol`):

- ``combined``: word weight x cosine power x look weight (the look weight only on an index
  whose model has a look);
- ``arithmetic``: word weight (it has no cosine power), at the look weight chosen for
  ``combined``, which every method then shares;
- ``filter``: takes the cosine power chosen for ``combined`` (it is ``combined`` with word
  weight 0, which the grid includes).

The objective is the geometric mean of the MMs the judges give: the paper's MM (metadata) and,
when the truth names each item's source image, MM-shape (looks by the shape judge x words by the
clean truth). One judge alone would reward either the keyword match or the look alone. With the
truth, a method's choice is made among the settings whose T-nDCG (truth) is at least
``min_truth_t`` on every query kind (add, remove, replace: the words stay obeyed while the looks
gain), or among all of them when none is. Objectives within ``OBJECTIVE_TIE`` of the best are a
tie, below what the validation queries can tell apart; the tied setting that obeys the words
best on its worst query kind wins (:func:`choose_setting`). The chosen settings are
written into the index's manifest (:func:`stylesearch.search.settings.write_settings`), where
``search``, ``serve``, ``eval`` and :meth:`Searcher.load` find them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stylesearch.search.settings import SearchSettings, write_settings

if TYPE_CHECKING:
    from stylesearch.evaluation.protocol import System
    from stylesearch.search.searcher import Searcher

__all__ = [
    "COSINE_POWERS",
    "LOOK_WEIGHTS",
    "MIN_TRUTH_T",
    "OBJECTIVE_TIE",
    "choose_setting",
    "WORD_WEIGHTS",
    "objective",
    "tune_index",
]

#: the grids tried by default
WORD_WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
COSINE_POWERS: tuple[float, ...] = (4.0, 8.0)
LOOK_WEIGHTS: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7)
#: the T-nDCG (truth) a chosen setting keeps, where the truth allows measuring it
MIN_TRUTH_T = 0.95
#: objectives at most this far below the best are a tie, broken by the worst kind's T-nDCG (truth)
OBJECTIVE_TIE = 0.002


def objective(row: dict[str, Any]) -> float:
    """The tuning objective of a summary row: ``sqrt(MM x MM-shape)``, or MM without shape."""
    if row.get("mm_shape") is None:
        return float(row["mm"])
    return math.sqrt(float(row["mm"]) * float(row["mm_shape"]))


def _worst_kind(row: dict[str, Any]) -> float | None:
    """The lowest T-nDCG (truth) of a summary row's query kinds (None without the truth)."""
    values = [v.get("t_ndcg_truth") for v in row.get("by_type", {}).values()]
    values = [v for v in values if v is not None]
    return min(values) if values else None


def choose_setting(
    rows: Sequence[dict[str, Any]], min_truth_t: float, tie: float = OBJECTIVE_TIE
) -> dict[str, Any]:
    """The row with the best ``objective`` among those whose T-nDCG (truth) reaches
    ``min_truth_t`` on every query kind (``t_ndcg_truth_worst_kind``), or among all rows when
    none does (or without the truth). Rows within ``tie`` of that objective are a tie: of them,
    the one with the highest ``t_ndcg_truth_worst_kind`` wins (the best objective without the
    truth)."""

    def worst(r: dict[str, Any]) -> float:
        return r.get("t_ndcg_truth_worst_kind") or 0.0

    pool = [r for r in rows if worst(r) >= min_truth_t] or list(rows)
    best = max(r["objective"] for r in pool)
    tied = [r for r in pool if r["objective"] >= best - tie]
    return max(tied, key=lambda r: (worst(r), r["objective"]))


def tune_index(
    index_dir: str | Path,
    queries_path: str | Path,
    visual_dir: str | Path,
    *,
    truth_path: str | Path | None = None,
    word_weights: Sequence[float] = WORD_WEIGHTS,
    cosine_powers: Sequence[float] = COSINE_POWERS,
    look_weights: Sequence[float] = LOOK_WEIGHTS,
    min_truth_t: float = MIN_TRUTH_T,
    tie: float = OBJECTIVE_TIE,
    k: int = 10,
    write: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Try the grids on ``queries_path``, record the best settings in the index (``write``).

    Returns ``{"settings": SearchSettings.to_dict(), "objective", "table": [...]}``, one table
    row per (method, word weight, cosine power, look weight) with its V, T, MM (and MM-shape)
    and objective. On an index without a look, ``look_weights`` is not used.
    """
    from stylesearch.evaluation.attributes import load_truth
    from stylesearch.evaluation.judges import load_shape
    from stylesearch.evaluation.protocol import evaluate_systems, summarize
    from stylesearch.evaluation.queries import load_queries
    from stylesearch.search.searcher import Searcher

    _check_grids(word_weights, cosine_powers, look_weights)
    queries = load_queries(queries_path)
    base = Searcher.load(index_dir, grounding_threshold=None)  # every word, as eval ranks
    has_look = base.model.look is not None
    looks = [float(a) for a in look_weights] if has_look else [base.settings.look_weight]
    grid = _grid(word_weights, cosine_powers, looks, has_look)
    systems = _grid_systems(base, index_dir, grid)
    truth = load_truth(truth_path) if truth_path is not None else None
    shape = None
    if truth_path is not None:
        shape = load_shape(base, queries, truth_path, log=log)
    result = evaluate_systems(
        systems, queries, visual_dir, k=k, truth=truth, shape=shape, baseline=False,
        progress=progress, log=log,
    )  # fmt: skip
    table = _grid_table(summarize(result), grid)

    def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return choose_setting(rows, min_truth_t, tie)

    best_combined = choose([r for r in table if r["method"] == "combined"])
    look = best_combined["look_weight"]
    best = {
        "combined": best_combined,
        "arithmetic": choose(
            [r for r in table if r["method"] == "arithmetic" and r["look_weight"] == look]
        ),
    }
    tuning = {
        "objective": "sqrt(MM x MM-shape)" if shape is not None else "MM",
        "queries": len(queries),
        "k": k,
        "word_weights": [float(w) for w in word_weights],
        "cosine_powers": [float(g) for g in cosine_powers],
        "look_weights": looks,
        "min_truth_t": min_truth_t if truth is not None else None,
        "tie": tie,
        "best": {m: round(r["objective"], 4) for m, r in best.items()},
    }
    settings = SearchSettings(
        word_weight={m: r["word_weight"] for m, r in best.items()},
        cosine_power=best["combined"]["cosine_power"],
        look_weight=look,
        source="tuned",
        tuned_on=str(Path(queries_path).resolve()),
        tuning=tuning,
    )
    if write:
        write_settings(index_dir, settings)
    return {"settings": settings.to_dict(), **tuning, "table": table}


#: a grid point: (method, word weight, cosine power or None, look weight)
GridPoint = tuple[str, float, float | None, float]


def _check_grids(
    word_weights: Sequence[float], cosine_powers: Sequence[float], look_weights: Sequence[float]
) -> None:
    from stylesearch.evaluation.protocol import EvaluationError

    if not word_weights or not cosine_powers:
        raise EvaluationError("give at least one word weight and one cosine power to try")
    if any(not w >= 0 for w in word_weights) or any(not g > 0 for g in cosine_powers):
        raise EvaluationError("word weights must be >= 0 and cosine powers > 0")
    if not look_weights or any(not 0 <= a <= 1 for a in look_weights):
        raise EvaluationError("give at least one look weight to try, each in [0, 1]")


def _grid(
    word_weights: Sequence[float],
    cosine_powers: Sequence[float],
    looks: Sequence[float],
    has_look: bool,
) -> dict[str, GridPoint]:
    """Every setting to try, by its system name: ``arithmetic`` per word weight and
    ``combined`` per word weight and cosine power, for each look weight."""
    grid: dict[str, GridPoint] = {}
    for a in looks:
        tag = f" a={a:g}" if has_look else ""
        for w in word_weights:
            grid[f"arithmetic w={w:g}{tag}"] = ("arithmetic", float(w), None, a)
            for g in cosine_powers:
                grid[f"combined w={w:g} g={g:g}{tag}"] = ("combined", float(w), float(g), a)
    return grid


def _grid_systems(
    base: Searcher, index_dir: str | Path, grid: dict[str, GridPoint]
) -> list[System]:
    """One system per grid point, sharing ``base``'s index, model and text pipeline."""
    from stylesearch.evaluation.protocol import System

    return [
        System(
            name,
            Path(index_dir),
            base.with_settings(word_weight=w, cosine_power=g or base.cosine_power, look_weight=a),
            (method,),
        )
        for name, (method, w, g, a) in grid.items()
    ]


#: what ``tune --json`` gives per query kind for each setting tried
_BY_KIND_KEYS = ("mm", "t_ndcg_truth", "v_shape", "mm_shape")


def _grid_table(summary: list[dict[str, Any]], grid: dict[str, GridPoint]) -> list[dict[str, Any]]:
    """One row per grid point: its setting, metrics (overall and by query kind) and objective
    (the oracle row left out)."""
    table = []
    for row in summary:
        if row["system"] not in grid:  # the oracle row
            continue
        method, w, g, a = grid[row["system"]]
        table.append(
            {
                "method": method,
                "word_weight": w,
                "cosine_power": g,
                "look_weight": a,
                "objective": objective(row),
                **{
                    key: row[key]
                    for key in ("v_ndcg", "t_ndcg", "mm", "t_ndcg_truth", "v_shape", "mm_shape")
                },
                "t_ndcg_truth_worst_kind": _worst_kind(row),
                "by_kind": {
                    kind: {key: values[key] for key in _BY_KIND_KEYS}
                    for kind, values in row.get("by_type", {}).items()
                },
            }
        )
    return table
