"""Embed a catalog with a trained model and write an index folder (``stylesearch index``).

For every accepted catalog item (main image only) the model gives ``f_I`` (stored L2-normalised
in ``vectors.npy``) and the attribute probabilities ``p_w = sigmoid(W_a f_I + b_a)`` for every
vocabulary word (``attributes.npy``, float16). The item's metadata words are its text (title,
description, attributes) through the model's own text pipeline, kept when in the vocabulary.
The manifest records the model's fingerprint (sha256 of its weights), its folder (absolute) and
its vocabulary fingerprint, so :class:`~stylesearch.search.Searcher` can load the same model and
refuse another.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from stylesearch.catalog.dataset import ImageDataset, collate_images
from stylesearch.catalog.manifest import CatalogError, load_catalog
from stylesearch.catalog.transforms import eval_transform
from stylesearch.index.backends import resolve_backend
from stylesearch.index.store import IndexWriter, csr_from_bags
from stylesearch.model.io import load_model
from stylesearch.text.pipeline import TextPipeline

__all__ = ["BuildResult", "build_index"]


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_index` did."""

    out_dir: Path
    count: int
    rejected: int
    backend: str
    embed_seconds: float
    images_per_second: float
    total_seconds: float


def build_index(
    model_dir: str | Path,
    catalog_path: str | Path,
    out_dir: str | Path,
    *,
    backend: str = "faiss",
    backend_params: dict | None = None,
    batch_size: int = 128,
    num_workers: int = 2,
    device: str = "cpu",
    progress: bool = False,
) -> BuildResult:
    """Embed the catalog and write ``out_dir`` atomically (see :mod:`stylesearch.index.store`).

    Args:
        model_dir: a model folder written by ``stylesearch train``.
        catalog_path: the catalog manifest to index (rejected rows are skipped and counted).
        out_dir: the index folder (missing, empty, or an index to replace).
        backend: ``"faiss"`` (HNSW, the default) or ``"exact"``.
        backend_params: faiss HNSW parameters (:class:`~stylesearch.index.backends.HNSWParams`).
        batch_size, num_workers: the image DataLoader's.
        device: torch device for the model.
        progress: show progress bars (images/s) on stderr.

    Raises:
        CatalogError: the catalog has no usable item. ``FileNotFoundError`` / ``ModelFolderError``
        from the model folder; ``IndexFormatError`` if ``out_dir`` is something else.
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    backend_name = resolve_backend(backend)
    model = load_model(model_dir, device=device)
    assert model.vocab is not None
    catalog = load_catalog(catalog_path, progress=progress)
    items = catalog.items
    if not items:
        raise CatalogError(f"{catalog_path}: no usable item to index ({catalog.summary()})")
    vocab = model.vocab
    pipeline = TextPipeline(model.text_config)
    bags = pipeline.words_many([it.text for it in items], progress=progress)
    offsets, words = csr_from_bags([vocab.encode(bag) for bag in bags])

    dataset = ImageDataset([it.image for it in items], eval_transform(model.config.image_size))
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_images
    )
    writer = IndexWriter(out_dir, n=len(items), dim=model.config.embed_dim, vocab_size=len(vocab))
    with writer:
        t0 = time.perf_counter()
        done = 0
        bar = tqdm(
            total=len(items), desc="embed", unit="img", disable=not progress, file=sys.stderr
        )
        with torch.no_grad():
            for batch in loader:
                index = batch["index"].numpy()
                feats = model.encode_images(batch["images"].to(device))
                probs = torch.sigmoid(model.attribute_logits(feats))
                unit = torch.nn.functional.normalize(feats, dim=-1)
                writer.vectors[index] = unit.float().cpu().numpy()
                writer.attributes[index] = probs.float().cpu().numpy().astype(np.float16)
                done += len(index)
                bar.update(len(index))
                bar.set_postfix(img_s=f"{done / max(1e-9, time.perf_counter() - t0):.0f}")
        bar.close()
        embed_seconds = time.perf_counter() - t0
        writer.set_items(
            [it.id for it in items], [it.title for it in items], [str(it.image) for it in items]
        )
        writer.set_metadata(offsets, words)
        writer.finish(
            backend=backend_name,
            backend_params=backend_params if backend_name != "exact" else None,
            progress=progress,
            manifest={
                "model_fingerprint": model.fingerprint(),
                "model_dir": str(Path(model_dir).resolve()),
                "vocab_fingerprint": vocab.fingerprint(),
                "catalog": str(Path(catalog_path).resolve()),
                "rejected": len(catalog.rejected),
                "embed_seconds": round(embed_seconds, 3),
            },
        )
    return BuildResult(
        out_dir=Path(out_dir),
        count=len(items),
        rejected=len(catalog.rejected),
        backend=backend_name,
        embed_seconds=embed_seconds,
        images_per_second=len(items) / max(embed_seconds, 1e-9),
        total_seconds=time.perf_counter() - t_start,
    )
