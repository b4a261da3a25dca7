"""Run the paper's evaluation protocol over every search method (``stylesearch eval``).

For each benchmark query and each *system* (an index + the model it was built with; the first
is the main one, others are comparisons such as the same model trained with the triplet loss),
every method returns its top K, and each result is judged three ways, always by the same judges:

- **V** (visual): the baseline visual model's cosine between the query image and the result's
  image, clipped at 0 (:mod:`stylesearch.evaluation.metrics`); ideal = the K most similar items
  of the whole base catalog;
- **T** (metadata): the fraction of requirements the result's *metadata words* satisfy (the main
  index's metadata, through the main model's text pipeline, for every system: the paper's T);
- **T-truth**: the same fraction against the clean attributes (``truth.jsonl``), when given:
  a synonym in the metadata ("crimson") or a missing word does not count against an item that
  is red.

- **V-shape** (when the truth names each item's uncoloured source image,
  :mod:`stylesearch.evaluation.shape`): the cosine of the centred source pixels, clipped at 0;
  blind to colour and pattern, so it measures whether the garment was kept;

plus ``MM = sqrt(V x T)`` (and ``sqrt(V x T-truth)``, ``MM-shape = sqrt(V-shape x T-truth)``),
from the averaged nDCGs, overall and per query kind, and **category@K**: the fraction of the K
ranks holding the category the query asks for (its own, or the one it adds), and **kept@K**:
the fraction of the K ranks that keep the query item's own value of each attribute group the
query leaves alone (its colour when it changes the pattern, its pattern when it changes the
colour), averaged over those groups, by the truth.

The judges are in :mod:`stylesearch.evaluation.judges`; the off-the-shelf baseline and the
oracle, the rows every system is read against, in :mod:`stylesearch.evaluation.baselines`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylesearch.errors import StylesearchError
from stylesearch.evaluation.baselines import run_baseline, run_oracle
from stylesearch.evaluation.judges import (
    Judge,
    Judgements,
    embed_for_visual_judge,
    encode_queries,
    judge_queries,
)
from stylesearch.evaluation.metrics import mm
from stylesearch.evaluation.queries import KINDS, BenchmarkQuery
from stylesearch.evaluation.shape import ShapeVectors
from stylesearch.model.inference import progress_bar
from stylesearch.model.visual import read_visual_config
from stylesearch.search.query import METHODS, Query
from stylesearch.search.searcher import Searcher

__all__ = [
    "EvaluationError",
    "System",
    "evaluate_systems",
    "summarize",
]

Log = Callable[[str], None]


class EvaluationError(StylesearchError, ValueError):
    """Inputs that cannot be evaluated together; the message says which and what to do."""


@dataclass
class System:
    """A searchable configuration under test."""

    name: str
    index_dir: Path
    searcher: Searcher
    methods: Sequence[str] = METHODS
    description: str = ""


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _live_rows(index: Any) -> dict[str, int]:
    """Item id -> row of the items an index holds (rows removed by ``index delete`` left out)."""
    deleted = getattr(index, "deleted", None)
    return {
        index.item(row).id: row for row in range(index.count) if deleted is None or not deleted[row]
    }


def _row_map(main: Searcher, other: Searcher, name: str) -> np.ndarray:
    """``other``'s row -> the main index's row for the same item id (same live items required)."""
    main_rows, other_rows = _live_rows(main.index), _live_rows(other.index)
    if main_rows.keys() != other_rows.keys():
        extra = sorted(other_rows.keys() - main_rows.keys())[:1]
        lacking = sorted(main_rows.keys() - other_rows.keys())[:1]
        raise EvaluationError(
            f"system {name!r} holds {len(other_rows)} items and the main index {len(main_rows)}"
            f" (e.g. only in {name!r}: {extra}, only in the main index: {lacking}): compare "
            "systems built from the same base catalog"
        )
    mapping = np.full(other.index.count, -1, dtype=np.int64)
    for item_id, row in other_rows.items():
        mapping[row] = main_rows[item_id]
    return mapping


def evaluate_systems(
    systems: Sequence[System],
    queries: Sequence[BenchmarkQuery],
    visual_dir: str | Path,
    *,
    k: int = 10,
    truth: Mapping[str, Mapping[str, str]] | None = None,
    shape: ShapeVectors | None = None,
    baseline: bool = True,
    progress: bool = True,
    log: Log | None = None,
) -> dict[str, Any]:
    """Run every method of every system (and the off-the-shelf baseline) on ``queries``.

    ``shape`` (:func:`stylesearch.evaluation.judges.load_shape`) adds the shape judge and, with
    ``truth``, the oracle row.

    Returns ``{"per_query": [...], "systems": [...], ...}``: per-query nDCGs for
    :func:`summarize` and the report writer, and the returned ids (for the example sheet).

    Raises:
        EvaluationError: a query item is in the base catalog, systems index different
            catalogs, or a query word is not in a system's vocabulary.
    """
    log = log or _stderr
    _check_inputs(systems, queries, k)
    main = systems[0].searcher
    index = main.index
    n = index.count
    base_paths = [Path(index.item(row).image) for row in range(n)]
    deleted = getattr(index, "deleted", None)
    live = np.ones(n, dtype=bool) if deleted is None else ~np.asarray(deleted, dtype=bool)

    # ---- judges
    t0 = time.perf_counter()
    visual_base, visual_q = embed_for_visual_judge(
        visual_dir, base_paths, queries, progress=progress, log=log
    )

    def word_rows(word: str) -> np.ndarray:
        return index.rows_with_word(main.word_id(word))

    truth_groups = None if truth is None else _truth_groups(index, truth, live)
    judge = Judge(visual_base, word_rows, truth_groups, n)
    judged = judge_queries(judge, queries, visual_q, shape, truth, live, k)
    judge_seconds = time.perf_counter() - t0

    # ---- systems, then the rows they are read against
    described = []
    encoded: dict[int, np.ndarray] = {}
    for system in systems:
        described.append(_run_system(system, main, judged, encoded, progress=progress, log=log))
    if baseline:
        size = main.model.config.image_size
        described.append(
            run_baseline(index, base_paths, size, live, judge, judged, progress=progress, log=log)
        )
    if shape is not None and truth_groups is not None:
        described.append(run_oracle(index, live, judged))

    return {
        "k": k,
        "n_queries": len(queries),
        "base_items": n,
        "index": str(systems[0].index_dir),
        "visual_model": {
            "folder": str(visual_dir),
            "config": read_visual_config(visual_dir)["config"],
            "metrics": read_visual_config(visual_dir).get("metrics", {}).get("final", {}),
        },
        "truth": truth is not None,
        "shape": shape is not None,
        # whether filter-hard's words covered their learned synonym groups (the main system's
        # switch; `stylesearch eval` gives every system the same)
        "synonyms": main.synonyms,
        "judge_seconds": round(judge_seconds, 2),
        "systems": described,
        "per_query": judged.per_query,
    }


def _check_inputs(systems: Sequence[System], queries: Sequence[BenchmarkQuery], k: int) -> None:
    """Raise EvaluationError for no system, ``k`` < 1 or a query item in the base catalog."""
    if not systems:
        raise EvaluationError("nothing to evaluate: give at least one index")
    if k < 1:
        raise EvaluationError(f"k must be >= 1, got {k}")
    index = systems[0].searcher.index
    for q in queries:
        if index.row_of(q.item_id) is not None:
            raise EvaluationError(
                f"query {q.query_id}: its item {q.item_id!r} is in the base catalog; the "
                "protocol needs query items outside it (build queries from the query split)"
            )


def _truth_groups(
    index: Any, truth: Mapping[str, Mapping[str, str]], live: np.ndarray
) -> dict[str, np.ndarray]:
    """Attribute group -> (N,) the truth's value of every row (object array); every live row
    must have a truth row."""
    ids = [index.item(row).id for row in range(index.count)]
    missing = [i for i, alive in zip(ids, live, strict=True) if alive and i not in truth]
    if missing:
        raise EvaluationError(
            f"the truth file has no row for {len(missing)} base items (e.g. {missing[0]!r}): "
            "give the truth.jsonl of the catalog the index was built from"
        )
    groups = sorted({g for i in ids for g in truth.get(i, {})})
    return {
        g: np.array([truth.get(i, {}).get(g) for i in ids], dtype=object) for g in groups
    }  # fmt: skip


def _run_system(
    system: System,
    main: Searcher,
    judged: Judgements,
    encoded: dict[int, np.ndarray],
    *,
    progress: bool,
    log: Log,
) -> dict[str, Any]:
    """Search every query with every method of ``system``, record the rankings (as the main
    index's rows) and return the system's description. ``encoded``: the query vectors of each
    model already encoded, by ``id(model)``."""
    queries, k = judged.queries, judged.k
    s = system.searcher
    # a system over the very same loaded index (e.g. other search settings) needs no map
    row_map = None if s.index is main.index else _row_map(main, s, system.name)
    size = s.model.config.image_size
    log(f"eval: {system.name}: {len(queries)} queries x {len(system.methods)} methods")

    def encode(images: torch.Tensor, model: Any = s.model) -> torch.Tensor:
        return model.encode_index(images)

    if id(s.model) not in encoded:  # systems that share a model (tuning) encode once
        with torch.no_grad():
            encoded[id(s.model)] = encode_queries(
                encode, queries, size, progress=progress, desc=f"{system.name}: queries"
            )
    q_vecs = encoded[id(s.model)]
    for method in system.methods:
        bar = progress_bar(len(queries), f"{system.name}: {method}", progress, "query")
        for qi, q in enumerate(queries):
            query = Query(image=q.image, add=list(q.add), remove=list(q.remove), method=method, k=k)
            t = time.perf_counter()
            response = s.search(query, image_vector=q_vecs[qi])
            ms = (time.perf_counter() - t) * 1e3
            rows = np.array([r.row for r in response.results], dtype=np.int64)
            if row_map is not None:
                rows = row_map[rows]
            judged.record(system.name, method, qi, rows, ms, [r.id for r in response.results])
            bar.update()
        bar.close()
    return {
        "name": system.name,
        "index": str(system.index_dir),
        "description": system.description,
        "methods": list(system.methods),
        "model": _model_summary(s),
        "settings": s.settings.to_dict(),
    }


def _model_summary(searcher: Searcher) -> dict[str, Any]:
    from stylesearch.model.io import read_model_config

    model_dir = searcher.index.manifest.get("model_dir")
    learned = searcher.model.synonyms
    summary: dict[str, Any] = {
        "dir": model_dir,
        "backbone": searcher.model.config.backbone,
        "pretrained": searcher.model.config.pretrained,
        "image_size": searcher.model.config.image_size,
        "synonym_groups": 0 if learned is None else len(learned.groups),
    }
    try:
        extra = read_model_config(model_dir).get("extra", {}) if model_dir else {}
    except (FileNotFoundError, ValueError):
        extra = {}
    train_config = extra.get("train_config") or {}
    if train_config:
        summary["loss"] = train_config.get("loss", {}).get("name")
        summary["epochs"] = train_config.get("train", {}).get("epochs")
    return summary


def _mean(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    """The mean of ``key`` over the rows that have it (None when none has)."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    v = float(np.mean([r["v"] for r in rows]))
    t = float(np.mean([r["t"] for r in rows]))
    tt = _mean(rows, "t_truth")
    vs = _mean(rows, "v_shape")
    ms = np.array([r["ms"] for r in rows])
    return {
        "queries": len(rows),
        "v_ndcg": v,
        "t_ndcg": t,
        "mm": float(mm(v, t)),
        "t_ndcg_truth": tt,
        "mm_truth": None if tt is None else float(mm(v, tt)),
        "v_shape": vs,
        "mm_shape": None if vs is None or tt is None else float(mm(vs, tt)),
        "category_at_k": _mean(rows, "category"),
        "kept_at_k": _mean(rows, "kept"),
        "search_ms_p50": float(np.percentile(ms, 50)),
        "search_ms_p99": float(np.percentile(ms, 99)),
    }


def summarize(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (system, method): overall metrics and the same per query kind."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in result["per_query"]:
        groups.setdefault((r["system"], r["method"]), []).append(r)
    table = []
    for (system, method), rows in groups.items():
        entry = {"system": system, "method": method, **_aggregate(rows)}
        entry["by_type"] = {
            kind: _aggregate([r for r in rows if r["type"] == kind])
            for kind in KINDS
            if any(r["type"] == kind for r in rows)
        }
        table.append(entry)
    return table
