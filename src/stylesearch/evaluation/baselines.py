"""The evaluation's reference rows (:mod:`stylesearch.evaluation.protocol`).

The **off-the-shelf baseline** is what a team could assemble from stock parts:
ImageNet-pretrained EfficientNet-Lite0 features (no fine-tuning), ranked by cosine among the items
whose metadata contains every wanted word and no unwanted word (``keyword-filter``), and over the
whole catalog with the words ignored (``stock-visual``). The **oracle** (with truth and shape
judges) returns the items meeting every requirement by the truth, in the shape judge's order:
the limit every other row is read against.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylesearch.evaluation.judges import Judge, Judgements, encode_queries
from stylesearch.evaluation.metrics import oracle_ranking
from stylesearch.evaluation.queries import BenchmarkQuery
from stylesearch.model.inference import embed_image_paths

__all__ = [
    "BASELINE_METHOD",
    "BASELINE_NAME",
    "ORACLE_KEPT_METHOD",
    "ORACLE_METHOD",
    "ORACLE_NAME",
    "STOCK_VISUAL_METHOD",
    "run_baseline",
    "run_oracle",
]

BASELINE_NAME = "off-the-shelf"
BASELINE_METHOD = "keyword-filter"
STOCK_VISUAL_METHOD = "stock-visual"
ORACLE_NAME = "oracle"
ORACLE_METHOD = "truth+shape"
ORACLE_KEPT_METHOD = "truth+kept+shape"
Log = Callable[[str], None]


def _pretrained_features(images: torch.Tensor, net: torch.nn.Module) -> torch.Tensor:
    return torch.nn.functional.normalize(net(images).float(), dim=-1)


def run_baseline(
    index: Any,
    base_paths: Sequence[Path],
    size: int,
    live: np.ndarray,
    judge: Judge,
    judged: Judgements,
    *,
    progress: bool,
    log: Log,
) -> dict[str, Any]:
    """Search every query of ``judged`` with the off-the-shelf baseline at ``size`` px, record
    its rankings and return its description."""
    from stylesearch.config import ModelConfig
    from stylesearch.model.towers import build_image_backbone

    queries, k = judged.queries, judged.k
    net, _ = build_image_backbone(ModelConfig(backbone="efficientnet_lite0", pretrained=True))
    net.eval()

    def stock(images: torch.Tensor) -> torch.Tensor:
        return _pretrained_features(images, net)

    log(
        f"eval: {BASELINE_NAME}: ImageNet EfficientNet-Lite0 features of {len(base_paths)} "
        "base images"
    )
    stock_base = embed_image_paths(
        stock, base_paths, image_size=size, progress=progress, desc="stock: base"
    )
    stock_q = encode_queries(stock, queries, size, progress=progress, desc="stock: queries")
    for qi, q in enumerate(queries):
        t = time.perf_counter()
        allowed = _allowed(q, live, judge)
        for method, cand in (
            (BASELINE_METHOD, np.flatnonzero(allowed)),
            (STOCK_VISUAL_METHOD, np.flatnonzero(live)),
        ):
            cos = stock_base[cand] @ stock_q[qi]
            top = cand[np.argsort(-cos, kind="stable")[:k]]
            ms = (time.perf_counter() - t) * 1e3
            judged.record(BASELINE_NAME, method, qi, top, ms, [index.item(r).id for r in top])
            t = time.perf_counter()
    return {
        "name": BASELINE_NAME,
        "index": None,
        "description": "ImageNet-pretrained EfficientNet-Lite0 features (no training) "
        f"ranked by cosine: `{BASELINE_METHOD}` among the items whose metadata has every "
        f"wanted word and no unwanted word, `{STOCK_VISUAL_METHOD}` over the whole "
        "catalog with the words ignored",
        "methods": [BASELINE_METHOD, STOCK_VISUAL_METHOD],
        "model": {"backbone": "efficientnet_lite0 (ImageNet)", "image_size": size},
    }


def _allowed(q: BenchmarkQuery, live: np.ndarray, judge: Judge) -> np.ndarray:
    """(N,) bool: the live rows whose metadata has every wanted word and no unwanted word."""
    allowed = live.copy()
    for w in q.add:
        allowed &= judge.has_word(w)
    for w in q.remove:
        allowed &= ~judge.has_word(w)
    return allowed


def run_oracle(index: Any, live: np.ndarray, judged: Judgements) -> dict[str, Any]:
    """Record the oracle's rankings where a query has both judges, and return its description:
    every requirement met by the truth, in the shape judge's order (``truth+shape``), and the
    same among the items that also keep the query item's value of each attribute group the
    query leaves alone (``truth+kept+shape``: the limit of a list that keeps all of kept@K)."""
    for qi in range(len(judged.queries)):
        truth_gain, shape_gain = judged.gains[qi][2], judged.gains[qi][3]
        if truth_gain is None or shape_gain is None:
            continue
        meets = (truth_gain[0] >= 1.0) & live
        keeps = meets.copy()
        for group, value in judged.kept[qi].items():
            keeps &= judged.truth_groups[group] == value
        for method, gate in ((ORACLE_METHOD, meets), (ORACLE_KEPT_METHOD, keeps)):
            top = oracle_ranking(gate, shape_gain[0], judged.k)
            judged.record(ORACLE_NAME, method, qi, top, 0.0, [index.item(r).id for r in top])
    return {
        "name": ORACLE_NAME,
        "index": None,
        "description": "the limit: the items that meet every requirement by the clean "
        f"truth, ordered by the shape judge itself (`{ORACLE_METHOD}`); `{ORACLE_KEPT_METHOD}`: "
        "the same among those that also keep the query item's colour, pattern or other "
        "attribute the words leave alone",
        "methods": [ORACLE_METHOD, ORACLE_KEPT_METHOD],
        "model": {},
    }
