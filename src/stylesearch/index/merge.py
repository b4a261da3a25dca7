"""``index merge``: join shard indexes (``stylesearch index --shard I/N``) or any indexes of the
same model into one new index, with any backend; deleted rows are left out.

Written like a build: a temporary folder beside ``out_dir``, swapped in only when complete.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stylesearch.index.backends import resolve_backend
from stylesearch.index.errors import IndexMismatchError
from stylesearch.index.fusion import TextFusion
from stylesearch.index.store import Index, IndexWriter
from stylesearch.index.update import IndexUpdateError, copy_rows, read_items

__all__ = ["MergeResult", "merge_indexes"]


@dataclass(frozen=True)
class MergeResult:
    out_dir: Path
    count: int
    shards: int
    backend: str
    total_seconds: float


def merge_indexes(
    out_dir: str | Path,
    shard_dirs: Sequence[str | Path],
    *,
    backend: str = "faiss",
    backend_params: dict[str, Any] | None = None,
    progress: bool = False,
) -> MergeResult:
    """Join indexes built with the same model (typically the shards of ``index --shard I/N``)
    into ``out_dir`` with ``backend``. Deleted rows are left out.

    Raises:
        IndexMismatchError: the shards were built with different models or vocabularies.
        IndexUpdateError: an item id is in two shards, a shard of an ``I/N`` series is missing
            or given twice, or ``out_dir`` is one of the shards.
    """
    t_start = time.perf_counter()
    backend_name = resolve_backend(backend)
    if not shard_dirs:
        raise IndexUpdateError("give at least one shard index folder to merge")
    out_dir = Path(out_dir)
    for d in shard_dirs:
        if Path(d).resolve() == out_dir.resolve():
            raise IndexUpdateError(f"--out {out_dir} is one of the shards; write elsewhere")
    from stylesearch.index.build import _drop_replaced_collection, _old_milvus_collection

    old_collection = _old_milvus_collection(out_dir)
    shards = [Index.load(d) for d in shard_dirs]
    try:
        first = shards[0]
        _check_shards(shards)
        parts_ids, parts_titles, parts_images, keep_rows = _kept_items(shards)
        total = len(parts_ids)
        if total == 0:
            raise IndexUpdateError("the shards hold no item (every row is deleted)")
        bags = []
        for s, keep in zip(shards, keep_rows, strict=True):
            bags += [s.metadata_word_ids(int(r)).tolist() for r in keep]
        from stylesearch.index.postings import csr_from_bags

        offsets, words = csr_from_bags(bags)
        manifest = _merged_manifest(shards, keep_rows)
        with IndexWriter(out_dir, n=total, dim=first.dimension, vocab_size=first.vocab_size) as w:
            at = 0
            for s, keep in zip(shards, keep_rows, strict=True):
                copy_rows(w, at, s.vectors, s.attributes, keep)
                at += keep.shape[0]
            w.set_items(parts_ids, parts_titles, parts_images)
            w.set_metadata(offsets, words)
            w.finish(
                backend=backend_name,
                backend_params=backend_params if backend_name != "exact" else None,
                manifest=manifest,
                progress=progress,
            )
    finally:
        for s in shards:
            s.close()
    _drop_replaced_collection(old_collection, out_dir)
    return MergeResult(out_dir, total, len(shards), backend_name, time.perf_counter() - t_start)


#: the manifest keys every merged shard must share (the model, its vocabulary and the version
#: its looks were read at)
_MODEL_KEYS = ("model_fingerprint", "vocab_fingerprint", "look_version")


def _check_shards(shards: Sequence[Index]) -> None:
    """Raise unless the shards share the model, the text fusion and the shape, and unless
    the shards of an ``I/N`` series are each given once (:func:`_check_series`)."""
    first = shards[0]
    for s in shards[1:]:
        for key in _MODEL_KEYS:
            if s.manifest.get(key) != first.manifest.get(key):
                raise IndexMismatchError(
                    f"{s.folder} was built with another model than {first.folder} "
                    f"({key} differs); every shard must use the same model, and read its "
                    "looks at the same version"
                )
        fusions = [TextFusion.from_manifest(x.manifest) for x in (first, s)]
        if fusions[0] != fusions[1]:
            raise IndexUpdateError(
                f"{s.folder} fuses its items' text by {fusions[1].describe()}, "
                f"{first.folder} by {fusions[0].describe()}; index every shard with the same "
                "--metadata-fusion and --metadata-weight"
            )
        if (s.dimension, s.vocab_size) != (first.dimension, first.vocab_size):
            raise IndexMismatchError(f"{s.folder} and {first.folder} differ in shape")
    _check_series(shards)


def _check_series(shards: Sequence[Index]) -> None:
    """When every shard is one of the same ``I/N`` series: each ``I`` given once."""
    series = [s.manifest.get("shard") for s in shards]
    if not all(series):
        return
    parts = {int(x["count"]) for x in series if x}
    seen = sorted(int(x["index"]) for x in series if x)
    if len(parts) != 1:
        return
    n_parts = parts.pop()
    missing = sorted(set(range(n_parts)) - set(seen))
    twice = sorted({i for i in seen if seen.count(i) > 1})
    said = [f"missing {', '.join(f'{i}/{n_parts}' for i in missing)}"] if missing else []
    said += [f"given twice: {', '.join(f'{i}/{n_parts}' for i in twice)}"] if twice else []
    if said:
        raise IndexUpdateError(f"shards of a {n_parts}-way split: " + "; ".join(said))


def _kept_items(
    shards: Sequence[Index],
) -> tuple[list[str], list[str], list[str], list[np.ndarray]]:
    """The live items of every shard in order: ids, titles, images and each shard's kept rows.
    Raises IndexUpdateError for an id in two shards."""
    parts_ids: list[str] = []
    parts_titles: list[str] = []
    parts_images: list[str] = []
    keep_rows: list[np.ndarray] = []
    owner: dict[str, Path] = {}
    for s in shards:
        ids, titles, images = read_items(s)
        keep = np.arange(s.count) if s.deleted is None else np.flatnonzero(~s.deleted)
        kept_ids = [ids[r] for r in keep]
        for item_id in kept_ids:
            if item_id in owner:
                raise IndexUpdateError(
                    f"item id {item_id!r} is in both {owner[item_id]} and {s.folder}; "
                    "shards must not overlap"
                )
            owner[item_id] = s.folder
        parts_ids += kept_ids
        parts_titles += [titles[r] for r in keep]
        parts_images += [images[r] for r in keep]
        keep_rows.append(keep)
    return parts_ids, parts_titles, parts_images, keep_rows


def _merged_manifest(shards: Sequence[Index], keep_rows: list[np.ndarray]) -> dict[str, Any]:
    """The merged index's manifest: the first shard's model, and where its items came from."""
    first = shards[0]
    carried = (*_MODEL_KEYS, "model_dir", "metadata_fusion", "metadata_weight")
    manifest = {k: first.manifest[k] for k in carried if k in first.manifest}
    manifest["rejected"] = int(first.manifest.get("rejected", 0))
    manifest["catalog"] = first.manifest.get("catalog")
    manifest["merged_from"] = [
        {"folder": str(s.folder.resolve()), "items": int(k.shape[0]),
         "shard": s.manifest.get("shard")}
        for s, k in zip(shards, keep_rows, strict=True)
    ]  # fmt: skip
    return manifest
