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
ranks holding the category the query asks for (its own, or the one it adds).

The **off-the-shelf baseline** is what a team could assemble from stock parts:
ImageNet-pretrained EfficientNet-Lite0 features (no fine-tuning), ranked by cosine among the items
whose metadata contains every wanted word and no unwanted word (``keyword-filter``), and over the
whole catalog with the words ignored (``stock-visual``). The **oracle** (with truth and shape
judges) returns the items meeting every requirement by the truth, in the shape judge's order:
the limit every other row is read against.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylesearch.errors import StylesearchError
from stylesearch.evaluation.metrics import (
    category_preservation,
    dcg,
    ideal_dcg,
    mm,
    oracle_ranking,
    requirement_fraction,
    visual_relevance,
)
from stylesearch.evaluation.queries import KINDS, BenchmarkQuery
from stylesearch.evaluation.shape import ShapeVectors, load_shape_vectors
from stylesearch.model.inference import embed_image_paths, progress_bar
from stylesearch.model.visual import load_visual, read_visual_config
from stylesearch.search.query import METHODS, Query
from stylesearch.search.searcher import Searcher

__all__ = [
    "BASELINE_NAME",
    "ORACLE_NAME",
    "EvaluationError",
    "System",
    "evaluate_systems",
    "summarize",
]

BASELINE_NAME = "off-the-shelf"
BASELINE_METHOD = "keyword-filter"
STOCK_VISUAL_METHOD = "stock-visual"
ORACLE_NAME = "oracle"
ORACLE_METHOD = "truth+shape"
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


@dataclass
class _Judge:
    """Everything the three relevance judges need, over the main index's rows."""

    visual_base: np.ndarray  # (N, Dv) unit rows
    word_rows: Callable[[str], np.ndarray]  # user word -> sorted rows whose metadata has it
    truth_groups: dict[str, np.ndarray] | None  # group -> (N,) values (object array)
    n: int
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def has_word(self, word: str) -> np.ndarray:
        if word not in self._cache:
            mask = np.zeros(self.n, dtype=bool)
            mask[self.word_rows(word)] = True
            self._cache[word] = mask
        return self._cache[word]

    def metadata_gains(self, q: BenchmarkQuery) -> np.ndarray:
        wanted = np.array([self.has_word(w) for w in q.add]).reshape(len(q.add), self.n)
        unwanted = np.array([self.has_word(w) for w in q.remove]).reshape(len(q.remove), self.n)
        return requirement_fraction(wanted, unwanted)

    def truth_gains(self, q: BenchmarkQuery) -> np.ndarray | None:
        if self.truth_groups is None:
            return None
        group = q.group or _group_of(q, self.truth_groups)
        if group is None or group not in self.truth_groups:
            return None
        values = self.truth_groups[group]
        wanted = np.array([values == w for w in q.add]).reshape(len(q.add), self.n)
        unwanted = np.array([values == w for w in q.remove]).reshape(len(q.remove), self.n)
        return requirement_fraction(wanted, unwanted)


def expected_category(q: BenchmarkQuery, own: str | None) -> str | None:
    """The category a query asks for: the one it adds, else the item's own (``own``); ``None``
    when it only removes the item's category (no single category is asked for)."""
    if q.group == "category":
        return q.add[0] if q.add else None
    return own


def _group_of(q: BenchmarkQuery, groups: Mapping[str, np.ndarray]) -> str | None:
    words = set(q.add) | set(q.remove)
    for group, values in groups.items():
        if words <= set(values.tolist()):
            return group
    return None


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _encode_queries(
    encode: Callable[[torch.Tensor], torch.Tensor],
    queries: Sequence[BenchmarkQuery],
    image_size: int,
    *,
    progress: bool,
    desc: str,
) -> np.ndarray:
    return embed_image_paths(
        encode, [q.image for q in queries], image_size=image_size, progress=progress, desc=desc
    )


def _pretrained_features(images: torch.Tensor, net: torch.nn.Module) -> torch.Tensor:
    return torch.nn.functional.normalize(net(images).float(), dim=-1)


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


def load_shape(
    searcher: Searcher,
    queries: Sequence[BenchmarkQuery],
    truth_path: str | Path,
    *,
    source_dir: str | Path | None = None,
    log: Log | None = None,
) -> ShapeVectors | None:
    """The shape judge's vectors for ``searcher``'s rows and ``queries``, or ``None`` (logged)
    when the truth file does not name every item's source image."""
    index = searcher.index
    ids = [index.item(row).id for row in range(index.count)]
    shape = load_shape_vectors(truth_path, ids, [q.item_id for q in queries], source_dir=source_dir)
    if shape is None:
        (log or _stderr)(
            f"eval: {truth_path} does not name every item's source image; no shape judge"
        )
    return shape


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

    ``shape`` (:func:`load_shape`) adds the shape judge and, with ``truth``, the oracle row.

    Returns ``{"per_query": [...], "systems": [...], ...}``: per-query nDCGs for
    :func:`summarize` and the report writer, and the returned ids (for the example sheet).

    Raises:
        EvaluationError: a query item is in the base catalog, systems index different
            catalogs, or a query word is not in a system's vocabulary.
    """
    log = log or _stderr
    if not systems:
        raise EvaluationError("nothing to evaluate: give at least one index")
    if k < 1:
        raise EvaluationError(f"k must be >= 1, got {k}")
    main = systems[0].searcher
    index = main.index
    for q in queries:
        if index.row_of(q.item_id) is not None:
            raise EvaluationError(
                f"query {q.query_id}: its item {q.item_id!r} is in the base catalog; the "
                "protocol needs query items outside it (build queries from the query split)"
            )
    n = index.count
    base_paths = [Path(index.item(row).image) for row in range(n)]
    deleted = getattr(index, "deleted", None)
    live = np.ones(n, dtype=bool) if deleted is None else ~np.asarray(deleted, dtype=bool)

    # ---- judges
    t0 = time.perf_counter()
    visual = load_visual(visual_dir)
    vsize = visual.config.image_size
    log(f"eval: embedding {n} base images with the visual model {visual_dir}")
    visual_base = embed_image_paths(
        visual, base_paths, image_size=vsize, progress=progress, desc="visual: base"
    )
    visual_q = _encode_queries(visual, queries, vsize, progress=progress, desc="visual: queries")

    def word_rows(word: str) -> np.ndarray:
        return index.rows_with_word(main.word_id(word))

    truth_groups = None
    if truth is not None:
        ids = [index.item(row).id for row in range(n)]
        missing = [i for i, alive in zip(ids, live, strict=True) if alive and i not in truth]
        if missing:
            raise EvaluationError(
                f"the truth file has no row for {len(missing)} base items (e.g. {missing[0]!r}): "
                "give the truth.jsonl of the catalog the index was built from"
            )
        groups = sorted({g for i in ids for g in truth.get(i, {})})
        truth_groups = {
            g: np.array([truth.get(i, {}).get(g) for i in ids], dtype=object) for g in groups
        }  # fmt: skip
    judge = _Judge(visual_base, word_rows, truth_groups, n)
    # per query and judge: the gains of every row and the ideal DCG@K over the catalog (computed
    # once here, not once per system and method)
    categories = None if truth_groups is None else truth_groups.get("category")
    gains: list[list[tuple[np.ndarray, float] | None]] = []
    expected: list[str | None] = []
    for qi, q in enumerate(queries):
        # deleted rows are not in the catalog any more: no gain, and not in the ideal ordering
        tt = judge.truth_gains(q)
        per_judge = (
            visual_relevance(visual_base @ visual_q[qi]) * live,
            judge.metadata_gains(q) * live,
            None if tt is None else tt * live,
            None if shape is None else visual_relevance(shape.base @ shape.queries[qi]) * live,
        )
        gains.append([None if g is None else (g, ideal_dcg(g, k)) for g in per_judge])
        own = None if truth is None else truth.get(q.item_id, {}).get("category")
        expected.append(None if categories is None else expected_category(q, own))
    judge_seconds = time.perf_counter() - t0

    per_query: list[dict[str, Any]] = []

    def record(system: str, method: str, qi: int, rows: np.ndarray, ms: float, ids: list[str]):
        rows = np.asarray(rows, dtype=np.int64)
        v, t, tt, vs = (
            None if g is None else (dcg(g[0][rows], k) / g[1] if g[1] > 0 else 0.0)
            for g in gains[qi]
        )  # nDCG@K, 0 when no item is relevant (metrics.ndcg)
        cat = None
        if categories is not None and expected[qi] is not None:
            cat = category_preservation(categories[rows], expected[qi], k)
        entry = {
            "system": system,
            "method": method,
            "query_id": queries[qi].query_id,
            "type": queries[qi].type,
            "v": v,
            "t": t,
            "t_truth": tt,
            "v_shape": vs,
            "category": cat,
            "ms": ms,
            "ids": ids[:k],
        }
        per_query.append(entry)

    # ---- systems
    described = []
    encoded: dict[int, np.ndarray] = {}
    for system in systems:
        s = system.searcher
        # a system over the very same loaded index (e.g. other search settings) needs no map
        row_map = None if s.index is index else _row_map(main, s, system.name)
        size = s.model.config.image_size
        log(f"eval: {system.name}: {len(queries)} queries x {len(system.methods)} methods")

        def encode(images: torch.Tensor, model: Any = s.model) -> torch.Tensor:
            return model.encode_index(images)

        if id(s.model) not in encoded:  # systems that share a model (tuning) encode once
            with torch.no_grad():
                encoded[id(s.model)] = _encode_queries(
                    encode, queries, size, progress=progress, desc=f"{system.name}: queries"
                )
        q_vecs = encoded[id(s.model)]
        for method in system.methods:
            bar = progress_bar(len(queries), f"{system.name}: {method}", progress, "query")
            for qi, q in enumerate(queries):
                query = Query(
                    image=q.image, add=list(q.add), remove=list(q.remove), method=method, k=k
                )
                t = time.perf_counter()
                response = s.search(query, image_vector=q_vecs[qi])
                ms = (time.perf_counter() - t) * 1e3
                rows = np.array([r.row for r in response.results], dtype=np.int64)
                if row_map is not None:
                    rows = row_map[rows]
                record(system.name, method, qi, rows, ms, [r.id for r in response.results])
                bar.update()
            bar.close()
        described.append(
            {
                "name": system.name,
                "index": str(system.index_dir),
                "description": system.description,
                "methods": list(system.methods),
                "model": _model_summary(s),
                "settings": s.settings.to_dict(),
            }
        )

    # ---- the off-the-shelf baseline
    if baseline:
        from stylesearch.config import ModelConfig
        from stylesearch.model.towers import build_image_backbone

        net, _ = build_image_backbone(ModelConfig(backbone="efficientnet_lite0", pretrained=True))
        net.eval()
        size = main.model.config.image_size

        def stock(images: torch.Tensor) -> torch.Tensor:
            return _pretrained_features(images, net)

        log(f"eval: {BASELINE_NAME}: ImageNet EfficientNet-Lite0 features of {n} base images")
        stock_base = embed_image_paths(
            stock, base_paths, image_size=size, progress=progress, desc="stock: base"
        )
        stock_q = _encode_queries(stock, queries, size, progress=progress, desc="stock: queries")
        for qi, q in enumerate(queries):
            t = time.perf_counter()
            allowed = live.copy()
            for w in q.add:
                allowed &= judge.has_word(w)
            for w in q.remove:
                allowed &= ~judge.has_word(w)
            for method, cand in (
                (BASELINE_METHOD, np.flatnonzero(allowed)),
                (STOCK_VISUAL_METHOD, np.flatnonzero(live)),
            ):
                cos = stock_base[cand] @ stock_q[qi]
                top = cand[np.argsort(-cos, kind="stable")[:k]]
                ms = (time.perf_counter() - t) * 1e3
                record(BASELINE_NAME, method, qi, top, ms, [index.item(r).id for r in top])
                t = time.perf_counter()
        described.append(
            {
                "name": BASELINE_NAME,
                "index": None,
                "description": "ImageNet-pretrained EfficientNet-Lite0 features (no training) "
                f"ranked by cosine: `{BASELINE_METHOD}` among the items whose metadata has every "
                f"wanted word and no unwanted word, `{STOCK_VISUAL_METHOD}` over the whole "
                "catalog with the words ignored",
                "methods": [BASELINE_METHOD, STOCK_VISUAL_METHOD],
                "model": {"backbone": "efficientnet_lite0 (ImageNet)", "image_size": size},
            }
        )

    # ---- the oracle: every requirement met by the truth, in the shape judge's order
    if shape is not None and truth_groups is not None:
        for qi in range(len(queries)):
            truth_gain, shape_gain = gains[qi][2], gains[qi][3]
            if truth_gain is None or shape_gain is None:
                continue
            top = oracle_ranking((truth_gain[0] >= 1.0) & live, shape_gain[0], k)
            record(ORACLE_NAME, ORACLE_METHOD, qi, top, 0.0, [index.item(r).id for r in top])
        described.append(
            {
                "name": ORACLE_NAME,
                "index": None,
                "description": "the limit: the items that meet every requirement by the clean "
                "truth, ordered by the shape judge itself",
                "methods": [ORACLE_METHOD],
                "model": {},
            }
        )

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
        "judge_seconds": round(judge_seconds, 2),
        "systems": described,
        "per_query": per_query,
    }


def _model_summary(searcher: Searcher) -> dict[str, Any]:
    from stylesearch.model.io import read_model_config

    model_dir = searcher.index.manifest.get("model_dir")
    summary: dict[str, Any] = {
        "dir": model_dir,
        "backbone": searcher.model.config.backbone,
        "pretrained": searcher.model.config.pretrained,
        "image_size": searcher.model.config.image_size,
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
