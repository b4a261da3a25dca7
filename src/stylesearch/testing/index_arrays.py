"""Write an index folder straight from arrays, with no model (tests, benchmarks, tools that embed
elsewhere): :func:`write_index_arrays`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stylesearch.index.store import IndexWriter

__all__ = ["write_index_arrays"]


def write_index_arrays(
    out_dir: str | Path,
    vectors: np.ndarray,
    attributes: np.ndarray,
    *,
    metadata: tuple[np.ndarray, np.ndarray],
    ids: list[str] | None = None,
    titles: list[str] | None = None,
    images: list[str] | None = None,
    backend: str = "exact",
    backend_params: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
    chunk: int = 65536,
    postings: dict[str, float] | None = None,
    coarse_clusters: int | None = None,
) -> Path:
    """Write an index folder from arrays (tests, benchmarks, tools that embed elsewhere).

    ``vectors`` ``(N, D)`` (normalised here), ``attributes`` ``(N, V)`` in [0, 1], ``metadata``
    a CSR ``(offsets, words)`` (:func:`~stylesearch.index.postings.csr_from_bags`). Ids default
    to ``"item-<row>"``.
    """
    n, dim = vectors.shape
    vocab_size = attributes.shape[1]
    ids = ids if ids is not None else [f"item-{i}" for i in range(n)]
    titles = titles if titles is not None else ids
    images = images if images is not None else [""] * n
    with IndexWriter(out_dir, n=n, dim=dim, vocab_size=vocab_size) as writer:
        for start in range(0, n, chunk):
            block = np.asarray(vectors[start : start + chunk], dtype=np.float32)
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            writer.vectors[start : start + chunk] = block / np.maximum(norms, 1e-12)
            writer.attributes[start : start + chunk] = attributes[start : start + chunk]
        writer.set_items(ids, titles, images)
        writer.set_metadata(*metadata)
        return writer.finish(
            backend=backend,
            backend_params=backend_params,
            manifest=manifest,
            postings=postings,
            coarse_clusters=coarse_clusters,
        )
