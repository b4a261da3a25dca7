"""Retrieval and attribute metrics used for validation during training.

Pure numpy functions, each tested against hand-computed values
(tests/unit/test_retrieval_metrics.py).
"""

from __future__ import annotations

import numpy as np


def recall_at_k(similarity: np.ndarray, k: int) -> float:
    """Fraction of queries whose true match is among the top ``k`` of its row.

    Args:
        similarity: (Q, Q) float, ``similarity[i, j]`` = score of candidate ``j`` for query ``i``;
            the true match of query ``i`` is candidate ``i`` (paired data, e.g. image i / text i).
        k: cut-off, >= 1.

    Ties are counted pessimistically: a candidate scoring exactly as high as the true match
    ranks before it, so a constant similarity matrix scores k / Q, not 1.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"similarity must be square (Q, Q), got shape {sim.shape}")
    if k < 1:
        raise ValueError("k must be >= 1")
    if sim.shape[0] == 0:
        return float("nan")
    positive = np.diag(sim)[:, None]
    # rank of the true match (0-based) = number of other candidates scoring >= it
    rank = (sim >= positive).sum(axis=1) - 1
    return float((rank < k).mean())


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of one ranking: mean of precision@i over the ranks i of the positives.

    Args:
        scores: (N,) float, higher = more likely positive.
        labels: (N,) bool or {0, 1}.

    Returns ``nan`` when there is no positive. Ties are broken by a stable sort on the negated
    score (input order), which keeps the function deterministic.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in shape")
    n_pos = int(labels.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = labels[order]
    cum_hits = np.cumsum(hits)
    precision_at_hit = cum_hits[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hit.sum() / n_pos)


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Macro mean of per-column average precision over the columns that have a positive.

    Args:
        scores: (N, V) float, e.g. attribute probabilities of N images for V words.
        labels: (N, V) bool, the words present in each item's metadata.

    Returns:
        (mAP, number of columns that entered the mean). mAP is ``nan`` when no column has a
        positive.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if scores.shape != labels.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be equal (N, V)")
    aps = [
        average_precision(scores[:, j], labels[:, j])
        for j in range(scores.shape[1])
        if labels[:, j].any()
    ]
    if not aps:
        return float("nan"), 0
    return float(np.mean(aps)), len(aps)
