"""The evaluation's judges (:mod:`stylesearch.evaluation.protocol`): V, T, T-truth, V-shape.

Every result of every system is judged by the same judges over the main index's rows. Per query,
:func:`judge_queries` computes each judge's gain of every row and its ideal DCG@K once; a
:class:`Judgements` then scores any ranking of rows (nDCG@K per judge, category@K and kept@K).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylesearch.evaluation.metrics import (
    category_preservation,
    dcg,
    ideal_dcg,
    requirement_fraction,
    visual_relevance,
)
from stylesearch.evaluation.queries import BenchmarkQuery
from stylesearch.evaluation.shape import ShapeVectors, load_shape_vectors
from stylesearch.model.inference import embed_image_paths
from stylesearch.model.visual import load_visual
from stylesearch.search.searcher import Searcher

__all__ = [
    "Judge",
    "Judgements",
    "embed_for_visual_judge",
    "encode_queries",
    "expected_category",
    "judge_queries",
    "load_shape",
]

Log = Callable[[str], None]


@dataclass
class Judge:
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


def encode_queries(
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


def embed_for_visual_judge(
    visual_dir: str | Path,
    base_paths: Sequence[Path],
    queries: Sequence[BenchmarkQuery],
    *,
    progress: bool,
    log: Log,
) -> tuple[np.ndarray, np.ndarray]:
    """The visual model's unit vectors of the base images (N, Dv) and the query images (Q, Dv)."""
    visual = load_visual(visual_dir)
    vsize = visual.config.image_size
    log(f"eval: embedding {len(base_paths)} base images with the visual model {visual_dir}")
    visual_base = embed_image_paths(
        visual, base_paths, image_size=vsize, progress=progress, desc="visual: base"
    )
    visual_q = encode_queries(visual, queries, vsize, progress=progress, desc="visual: queries")
    return visual_base, visual_q


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


@dataclass
class Judgements:
    """Per query: each judge's (gains of every row, ideal DCG@K), or ``None`` where the judge
    does not apply, in the order V, T, T-truth, V-shape; the category the query asks for; and
    the values of its item that it leaves alone (``kept``: group -> value).
    :meth:`record` scores one ranking and keeps the row in ``per_query``."""

    queries: Sequence[BenchmarkQuery]
    k: int
    gains: list[list[tuple[np.ndarray, float] | None]]
    expected: list[str | None]
    categories: np.ndarray | None  # (N,) the truth's category of every row
    kept: list[dict[str, str]]  # per query: attribute group -> the item's value it leaves alone
    truth_groups: Mapping[str, np.ndarray]  # group -> (N,) the truth's values ({} without one)
    per_query: list[dict[str, Any]] = field(default_factory=list)

    def record(
        self, system: str, method: str, qi: int, rows: np.ndarray, ms: float, ids: list[str]
    ) -> None:
        k = self.k
        rows = np.asarray(rows, dtype=np.int64)
        v, t, tt, vs = (
            None if g is None else (dcg(g[0][rows], k) / g[1] if g[1] > 0 else 0.0)
            for g in self.gains[qi]
        )  # nDCG@K, 0 when no item is relevant (metrics.ndcg)
        cat = None
        if self.categories is not None and self.expected[qi] is not None:
            cat = category_preservation(self.categories[rows], self.expected[qi], k)
        kept = None
        if self.kept[qi]:
            kept = float(
                np.mean([
                    category_preservation(self.truth_groups[g][rows], value, k)
                    for g, value in self.kept[qi].items()
                ])
            )  # fmt: skip
        entry = {
            "system": system,
            "method": method,
            "query_id": self.queries[qi].query_id,
            "type": self.queries[qi].type,
            "v": v,
            "t": t,
            "t_truth": tt,
            "v_shape": vs,
            "category": cat,
            "kept": kept,
            "ms": ms,
            "ids": ids[:k],
        }
        self.per_query.append(entry)


def judge_queries(
    judge: Judge,
    queries: Sequence[BenchmarkQuery],
    visual_q: np.ndarray,
    shape: ShapeVectors | None,
    truth: Mapping[str, Mapping[str, str]] | None,
    live: np.ndarray,
    k: int,
) -> Judgements:
    """Per query and judge: the gains of every row and the ideal DCG@K over the catalog
    (computed once here, not once per system and method)."""
    truth_groups = judge.truth_groups
    categories = None if truth_groups is None else truth_groups.get("category")
    changed = [
        None if truth_groups is None else q.group or _group_of(q, truth_groups) for q in queries
    ]
    # the attribute groups are those the queries change; category has its own measure
    kept_groups = sorted({g for g in changed if g is not None} - {"category"})
    gains: list[list[tuple[np.ndarray, float] | None]] = []
    expected: list[str | None] = []
    kept: list[dict[str, str]] = []
    for qi, q in enumerate(queries):
        # deleted rows are not in the catalog any more: no gain, and not in the ideal ordering
        tt = judge.truth_gains(q)
        per_judge = (
            visual_relevance(judge.visual_base @ visual_q[qi]) * live,
            judge.metadata_gains(q) * live,
            None if tt is None else tt * live,
            None if shape is None else visual_relevance(shape.base @ shape.queries[qi]) * live,
        )
        gains.append([None if g is None else (g, ideal_dcg(g, k)) for g in per_judge])
        item = {} if truth is None else truth.get(q.item_id, {})
        expected.append(None if categories is None else expected_category(q, item.get("category")))
        kept.append({g: item[g] for g in kept_groups if g != changed[qi] and g in item})
    return Judgements(queries, k, gains, expected, categories, kept, truth_groups or {})
