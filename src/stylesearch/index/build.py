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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from stylesearch.catalog.dataset import ImageDataset, collate_images
from stylesearch.catalog.manifest import Catalog, CatalogError, CatalogItem, load_catalog
from stylesearch.catalog.transforms import eval_transform
from stylesearch.config import ConfigError
from stylesearch.index.backends import resolve_backend
from stylesearch.index.fusion import TextFusion
from stylesearch.index.postings import csr_from_bags
from stylesearch.index.store import IndexFormatError, IndexWriter, read_manifest
from stylesearch.model.device import resolve_device
from stylesearch.model.io import load_model
from stylesearch.text.pipeline import TextPipeline

if TYPE_CHECKING:
    from stylesearch.model.joint import JointModel

__all__ = [
    "BuildResult",
    "build_index",
    "embed_items",
    "metadata_csr",
    "shard_slice",
]


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
    device: str | torch.device = "cpu",
    progress: bool = False,
    shard: str | tuple[int, int] | None = None,
    image_roots: Sequence[str | Path] = (),
    fusion: TextFusion | None = None,
) -> BuildResult:
    """Embed the catalog and write ``out_dir`` atomically (see :mod:`stylesearch.index.store`).

    Args:
        model_dir: a model folder written by ``stylesearch train``.
        catalog_path: the catalog manifest to index (rejected rows are skipped and counted).
        out_dir: the index folder (missing, empty, or an index to replace).
        backend: ``"faiss"`` (HNSW, the default), ``"exact"`` or ``"milvus"``.
        backend_params: faiss HNSW parameters (:class:`~stylesearch.index.backends.HNSWParams`);
            for Milvus also ``uri`` and ``collection``
            (:class:`~stylesearch.index.backends.milvus.MilvusBackend`).
        batch_size, num_workers: the image DataLoader's.
        device: where the model runs (:func:`~stylesearch.model.device.resolve_device`).
        progress: show progress bars (images/s) on stderr.
        shard: ``"I/N"`` (or ``(I, N)``, 0 <= I < N): index only the I-th of N contiguous slices
            of the catalog's accepted items (``stylesearch index merge`` joins the shards).
        image_roots: folders besides the catalog's own that its images may lie in
            (:func:`~stylesearch.catalog.manifest.load_catalog`).
        fusion: how each item's own text enters its attribute probabilities ``p_w``
            (:class:`~stylesearch.index.fusion.TextFusion`; default ``TextFusion()``, log-odds
            at weight 3). Kept in the manifest, so ``index add`` fuses new items alike.

    Raises:
        CatalogError: the catalog has no usable item. ``FileNotFoundError`` / ``ModelFolderError``
        from the model folder; ``IndexFormatError`` if ``out_dir`` is something else.
    """
    t_start = time.perf_counter()
    fusion = TextFusion() if fusion is None else fusion
    backend_name = resolve_backend(backend)
    shard_info = _parse_shard(shard)
    device = resolve_device(device)
    model = load_model(model_dir, device=device)
    assert model.vocab is not None
    catalog = load_catalog(catalog_path, progress=progress, image_roots=image_roots)
    items, extra = _items_to_index(catalog, catalog_path, shard_info)
    vocab = model.vocab
    offsets, words = metadata_csr(model, items, progress=progress)
    old_collection = _old_milvus_collection(out_dir)
    with IndexWriter(out_dir, n=len(items), dim=model.index_dim, vocab_size=len(vocab)) as writer:
        embed_seconds = _write_items(
            writer, model, items, (offsets, words), fusion, batch_size=batch_size,
            num_workers=num_workers, device=device, progress=progress,
        )  # fmt: skip
        writer.finish(
            backend=backend_name,
            backend_params=backend_params if backend_name != "exact" else None,
            progress=progress,
            manifest={
                "model_fingerprint": model.fingerprint(),
                "model_dir": str(Path(model_dir).resolve()),
                "vocab_fingerprint": vocab.fingerprint(),
                "look_version": None if model.look is None else model.look.version,
                "catalog": str(Path(catalog_path).resolve()),
                "rejected": len(catalog.rejected),
                "embed_seconds": round(embed_seconds, 3),
                **fusion.manifest_entries(),
                **extra,
            },
        )
    _drop_replaced_collection(old_collection, out_dir)
    return BuildResult(
        out_dir=Path(out_dir), count=len(items), rejected=len(catalog.rejected),
        backend=backend_name, embed_seconds=embed_seconds,
        images_per_second=len(items) / max(embed_seconds, 1e-9),
        total_seconds=time.perf_counter() - t_start,
    )  # fmt: skip


def _write_items(
    writer: IndexWriter,
    model: JointModel,
    items: Sequence[CatalogItem],
    metadata: tuple[np.ndarray, np.ndarray],
    fusion: TextFusion,
    *,
    batch_size: int,
    num_workers: int,
    device: str,
    progress: bool,
) -> float:
    """Embed ``items`` into ``writer``, fuse their ``metadata`` (CSR offsets, word ids) into
    the attribute probabilities and set the items and the metadata; returns the seconds spent
    embedding."""
    offsets, words = metadata
    t0 = time.perf_counter()
    embed_items(
        model, items, writer.vectors, writer.attributes, batch_size=batch_size,
        num_workers=num_workers, device=device, progress=progress,
    )  # fmt: skip
    embed_seconds = time.perf_counter() - t0
    fusion.fuse(writer.attributes, offsets, words)
    writer.set_items(
        [it.id for it in items], [it.title for it in items], [str(it.image) for it in items]
    )
    writer.set_metadata(offsets, words)
    return embed_seconds


def _items_to_index(
    catalog: Catalog, catalog_path: str | Path, shard_info: tuple[int, int] | None
) -> tuple[list[CatalogItem], dict[str, Any]]:
    """The catalog's accepted items, or with ``shard_info`` (I, N) its I-th of N slices, and
    the manifest entries that say which (``{"shard": ...}``, else none).

    Raises CatalogError when there is no item to index."""
    items = catalog.items
    if not items:
        raise CatalogError(f"{catalog_path}: no usable item to index ({catalog.summary()})")
    extra: dict[str, Any] = {}
    if shard_info is not None:
        part, parts = shard_info
        start, stop = shard_slice(len(items), part, parts)
        extra["shard"] = {"index": part, "count": parts, "catalog_items": len(items),
                          "start": start, "stop": stop}  # fmt: skip
        items = items[start:stop]
        if not items:
            raise CatalogError(
                f"{catalog_path}: shard {part}/{parts} of {len(catalog.items)} items is empty; "
                "use fewer shards"
            )
    return items, extra


def metadata_csr(
    model: JointModel, items: Sequence[CatalogItem], *, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's metadata words (its text through the model's pipeline, kept when in the
    vocabulary) as a CSR ``(offsets (n + 1,) int64, words int32)``."""
    assert model.vocab is not None
    pipeline = TextPipeline(model.text_config)
    bags = pipeline.words_many([it.text for it in items], progress=progress)
    return csr_from_bags([model.vocab.encode(bag) for bag in bags])


def embed_items(
    model: JointModel,
    items: Sequence[CatalogItem],
    vectors: np.ndarray,
    attributes: np.ndarray,
    *,
    batch_size: int = 128,
    num_workers: int = 2,
    device: str = "cpu",
    progress: bool = False,
) -> None:
    """Write each item's index vector and attribute probabilities
    (:meth:`JointModel.index_rows`) into ``vectors[i]`` ``(n, index_dim)`` float32 and
    ``attributes[i]`` ``(n, V)`` float16 (arrays or memmaps, row = item)."""
    from tqdm.auto import tqdm

    size = model.config.image_size
    dataset = ImageDataset([it.image for it in items], eval_transform(size), shrink_to=size)
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_images
    )
    t0 = time.perf_counter()
    done = 0
    bar = tqdm(total=len(items), desc="embed", unit="img", disable=not progress, file=sys.stderr)
    with torch.no_grad():
        for batch in loader:
            index = batch["index"].numpy()
            images = batch["images"].to(device)
            rows, probs = model.index_rows(images)
            vectors[index] = rows.float().cpu().numpy()
            attributes[index] = probs.float().cpu().numpy().astype(np.float16)
            done += len(index)
            bar.update(len(index))
            bar.set_postfix(img_s=f"{done / max(1e-9, time.perf_counter() - t0):.0f}")
    bar.close()


def shard_slice(n: int, part: int, parts: int) -> tuple[int, int]:
    """``[start, stop)`` of the ``part``-th of ``parts`` contiguous, near-equal slices of ``n``."""
    return n * part // parts, n * (part + 1) // parts


def _parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    if shard is None:
        return None
    if isinstance(shard, str):
        head, sep, tail = shard.partition("/")
        try:
            if not sep:
                raise ValueError
            part, parts = int(head), int(tail)
        except ValueError:
            raise ConfigError(f"--shard must look like I/N (e.g. 0/4), got {shard!r}") from None
    else:
        part, parts = shard
    if parts < 1 or not 0 <= part < parts:
        raise ConfigError(f"--shard I/N needs 0 <= I < N, got {part}/{parts}")
    return part, parts


def _old_milvus_collection(out_dir: str | Path) -> dict | None:
    """The Milvus collection of the index now at ``out_dir`` (dropped once it is replaced)."""
    try:
        meta = read_manifest(out_dir)
    except IndexFormatError:
        return None
    backend = meta.get("backend") or {}
    return backend.get("params") if backend.get("name") == "milvus" else None


def _drop_replaced_collection(old: dict | None, out_dir: str | Path) -> None:
    if not old:
        return
    new = _old_milvus_collection(out_dir) or {}
    if (new.get("uri"), new.get("collection")) == (old.get("uri"), old.get("collection")):
        return
    from stylesearch.index.backends.milvus import drop_collection

    drop_collection(old["uri"], old["collection"])
