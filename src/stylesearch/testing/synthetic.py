"""Synthetic catalogs of clustered unit vectors with attribute probabilities (tests, benchmarks).

ENVIRONMENT.md: uniform random vectors make every graph index look broken, so items are drawn
around ``n_clusters`` random centres. The vocabulary is split into attribute groups (colour,
pattern, category, ... up to ``vocab_size`` words); each item has one true value per group.
A cluster prefers one value per group (probability ``cluster_purity``), so wanted attributes are
correlated with, but not determined by, the visual neighbourhood, as in a real catalog.
``p_w`` is high (~0.6-1.0) for an item's true values and low (~0-0.3, skewed to 0) elsewhere;
metadata words are the true values with 15 % left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SyntheticCatalog", "make_synthetic_catalog"]


@dataclass
class SyntheticCatalog:
    """Arrays of a synthetic catalog (see the module docstring)."""

    vectors: np.ndarray  # (N, D) float32 unit rows
    attributes: np.ndarray  # (N, V) float16 in [0, 1]
    metadata: tuple[np.ndarray, np.ndarray]  # CSR (offsets, word ids)
    truth: np.ndarray  # (N, G) int32 true word id per group
    groups: list[np.ndarray]  # word ids of each group
    centres: np.ndarray  # (C, D) float32 unit cluster centres


def make_synthetic_catalog(
    n: int,
    dim: int = 256,
    vocab_size: int = 300,
    *,
    n_groups: int = 8,
    n_clusters: int | None = None,
    noise: float = 0.6,
    cluster_purity: float = 0.6,
    missing_rate: float = 0.15,
    seed: int = 0,
    chunk: int = 100_000,
) -> SyntheticCatalog:
    """Generate ``n`` items (memory: ``n (4 D + 2 V)`` bytes plus small arrays)."""
    rng = np.random.default_rng(seed)
    n_clusters = n_clusters or max(1, n // 500)
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # group sizes: a few hundred words split unevenly (colours ~ 30, categories ~ 60, ...)
    cuts = np.sort(rng.choice(np.arange(1, vocab_size), n_groups - 1, replace=False))
    groups = np.split(np.arange(vocab_size), cuts)
    favourite = np.stack([rng.choice(g, n_clusters) for g in groups], axis=1)  # (C, G)

    vectors = np.empty((n, dim), np.float32)
    attributes = np.empty((n, vocab_size), np.float16)
    truth = np.empty((n, n_groups), np.int32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        cl = rng.integers(n_clusters, size=m)
        v = centres[cl] + noise * rng.standard_normal((m, dim)).astype(np.float32) / np.sqrt(dim)
        vectors[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
        t = favourite[cl].copy()
        for g, words in enumerate(groups):
            other = rng.random(m) > cluster_purity
            t[other, g] = rng.choice(words, int(other.sum()))
        truth[start : start + m] = t
        low = (rng.random((m, vocab_size), dtype=np.float32) ** 3) * 0.3
        rows = np.repeat(np.arange(m), n_groups)
        low[rows, t.reshape(-1)] = 0.6 + 0.4 * rng.random(m * n_groups, dtype=np.float32)
        attributes[start : start + m] = low
    keep = rng.random(truth.shape) >= missing_rate
    lengths = keep.sum(axis=1)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    words = truth[keep].astype(np.int32)  # row-major: each row's kept words in group order
    return SyntheticCatalog(vectors, attributes, (offsets, words), truth, groups, centres)
