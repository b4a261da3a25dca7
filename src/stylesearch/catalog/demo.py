"""The built-in demo catalog: real Fashion-MNIST garments made into a noisy style catalog.

Every item is one Fashion-MNIST image (its category from the label), recoloured with one of
``COLOURS`` and drawn with one of ``PATTERNS`` (``demo_render``), with noisy titles and
descriptions (``demo_text``). Three disjoint splits, as in the paper:

- ``train``: the training catalog, from Fashion-MNIST's 60k training images;
- ``base``: the catalog that is searched, from the rest of those 60k images (when it asks for
  more items than there are images left, shapes are reused *within the base split only*, each
  time with a new colour/pattern combination);
- ``query``: benchmark query items, from the 10k test images.

No Fashion-MNIST image appears in two splits. Layout of the output folder::

    DIR/{train,base,query}/manifest.jsonl    catalog manifests (ARCHITECTURE.md format)
    DIR/{train,base,query}/images/NNN/*.png  main image + ``views`` extra images per item
    DIR/truth.jsonl                          clean attributes of every item (never trained on)
    DIR/README.md                            datasheet: counts, vocabulary, noise rates
    DIR/samples.png                          sample items with their titles
    DIR/build.json                           the config and its fingerprint

Deterministic for a config (each item draws from its own seeded generator). A second build with
the same config finds ``build.json`` and does no work; any other config is built in a temporary
folder beside ``DIR`` and swapped in at the end, so an interrupted build leaves the previous
catalog intact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from stylesearch.catalog import demo_render
from stylesearch.catalog.demo_datasheet import SHARD, datasheet
from stylesearch.catalog.demo_text import (
    CATEGORIES,
    COLOURS,
    GROUPS,
    PATTERNS,
    VOCABULARY,
    make_metadata,
)
from stylesearch.catalog.fashion_mnist import (
    DEFAULT_SOURCE,
    DemoSourceMissing,
    load_set,
    source_files,
)
from stylesearch.errors import StylesearchError
from stylesearch.folders import FolderSwap

__all__ = [
    "CATEGORIES",
    "COLOURS",
    "DEFAULT_SOURCE",
    "PATTERNS",
    "SPLITS",
    "DemoCatalog",
    "DemoConfig",
    "DemoConfigError",
    "DemoSourceMissing",
    "NotADemoCatalog",
    "build_demo_catalog",
]

#: bump when the output of the same config changes (forces a rebuild of old catalogs).
BUILDER_VERSION = 1
SPLITS: tuple[str, ...] = ("train", "base", "query")
_SPLIT_SOURCE = {"train": "train", "base": "train", "query": "t10k"}
_SPLIT_CODE = {"train": 1, "base": 2, "query": 3}
_GRID_ITEMS = 24
_CHUNK = 250  # items per unit of work


class DemoConfigError(StylesearchError, ValueError):
    """A demo catalog config that cannot be built; the message says the fix."""


class NotADemoCatalog(StylesearchError, FileExistsError):
    """The output folder holds other files: the builder never overwrites them."""


@dataclass
class DemoConfig:
    """What ``stylesearch catalog build-demo`` builds."""

    #: items in the training catalog (distinct Fashion-MNIST training images).
    items: int = 6000
    #: items in the base catalog that is searched (up to 1.5M: shapes are reused beyond the
    #: 60k - ``items`` training images left over, with new colour/pattern combinations).
    base_items: int = 4000
    #: query items for the benchmark (from the 10k Fashion-MNIST test images).
    query_items: int = 600
    seed: int = 0
    #: image side in pixels (RGB, square).
    size: int = 64
    #: extra images per item besides its main image (other views of the same item), >= 1.
    views: int = 1
    #: fraction of items whose text leaves out one attribute (category, colour or pattern).
    missing_rate: float = 0.15
    #: fraction of items whose text states one attribute with a wrong value.
    wrong_rate: float = 0.05
    #: how often an attribute word is written as a synonym (crimson for red).
    synonym_rate: float = 0.25
    #: folder holding the Fashion-MNIST IDX files.
    source: Path = DEFAULT_SOURCE

    def __post_init__(self) -> None:
        self.source = Path(self.source)

    def validate(self) -> DemoConfig:
        """Raise :class:`DemoConfigError` with a fix for values that cannot be built."""
        for name in ("items", "base_items", "query_items", "views"):
            if (value := getattr(self, name)) < 1:
                raise DemoConfigError(f"demo catalog: {name} must be >= 1, got {value}")
        if self.size < 32:
            raise DemoConfigError(f"demo catalog: size must be >= 32 pixels, got {self.size}")
        for name in ("missing_rate", "wrong_rate", "synonym_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise DemoConfigError(f"demo catalog: {name} must be in [0, 1]")
        if self.missing_rate + self.wrong_rate > 1.0:
            raise DemoConfigError("demo catalog: missing_rate + wrong_rate must be <= 1")
        if self.seed < 0:
            raise DemoConfigError("demo catalog: seed must be >= 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["source"] = str(self.source)
        return data


@dataclass
class DemoCatalog:
    """A built demo catalog: where its files are and how many items each split has."""

    root: Path
    train_manifest: Path
    base_manifest: Path
    query_manifest: Path
    truth: Path
    datasheet: Path
    grid: Path
    #: {"train": n, "base": n, "query": n, "images": total image files, ...}
    counts: dict[str, Any] = field(default_factory=dict)
    #: True when an up-to-date catalog was found and nothing was built.
    reused: bool = False
    #: wall-clock seconds this call took.
    seconds: float = 0.0

    def manifest(self, split: str) -> Path:
        return {"train": self.train_manifest, "base": self.base_manifest,
                "query": self.query_manifest}[split]  # fmt: skip


@dataclass
class SplitPlan:
    """Which source image and which colour/pattern each item of a split gets."""

    name: str
    source: str  # "train" or "t10k"
    source_index: np.ndarray  # (n,) int64
    colour: np.ndarray  # (n,) int64, index into COLOURS
    pattern: np.ndarray  # (n,) int64, index into PATTERNS
    distinct: int  # distinct source images used


def _coprime_step(n: int, start: int) -> int:
    step = start
    while math.gcd(step, n) != 1:
        step += 1
    return step


def _assign(pool: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``n`` items over ``pool`` shapes; each reuse round of a shape gets a new combination."""
    n_pat = len(PATTERNS)
    n_combo = len(COLOURS) * n_pat
    used = min(n, len(pool))
    start = rng.integers(0, n_combo, size=used)
    j = np.arange(n, dtype=np.int64)
    pos, rounds = j % used, j // used
    combo = (start[pos] + rounds * _coprime_step(n_combo, n_pat + 1)) % n_combo
    return pool[pos].astype(np.int64), combo // n_pat, combo % n_pat


def plan_splits(cfg: DemoConfig, n_train_source: int, n_test_source: int) -> list[SplitPlan]:
    """Disjoint source images for the three splits (deterministic for ``cfg.seed``)."""
    if cfg.items >= n_train_source:
        raise DemoConfigError(
            f"demo catalog: items={cfg.items} leaves no Fashion-MNIST training image for the "
            f"base catalog (the source has {n_train_source}); use fewer items"
        )
    rng = np.random.default_rng([cfg.seed, 0])
    perm = rng.permutation(n_train_source)
    test_perm = rng.permutation(n_test_source)
    pools = {"train": perm[: cfg.items], "base": perm[cfg.items :], "query": test_perm}
    sizes = {"train": cfg.items, "base": cfg.base_items, "query": cfg.query_items}
    plans = []
    for split in SPLITS:
        split_rng = np.random.default_rng([cfg.seed, _SPLIT_CODE[split], 0])
        idx, colour, pattern = _assign(pools[split], sizes[split], split_rng)
        distinct = min(sizes[split], len(pools[split]))
        plans.append(SplitPlan(split, _SPLIT_SOURCE[split], idx, colour, pattern, distinct))
    return plans


def _fingerprint(cfg: DemoConfig, files: dict[str, Path]) -> str:
    data = {
        "builder_version": BUILDER_VERSION,
        "config": cfg.to_dict(),
        "source_sizes": {name: path.stat().st_size for name, path in sorted(files.items())},
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _catalog(root: Path, counts: dict[str, Any], reused: bool, t0: float) -> DemoCatalog:
    return DemoCatalog(
        root=root,
        train_manifest=root / "train" / "manifest.jsonl",
        base_manifest=root / "base" / "manifest.jsonl",
        query_manifest=root / "query" / "manifest.jsonl",
        truth=root / "truth.jsonl",
        datasheet=root / "README.md",
        grid=root / "samples.png",
        counts=counts,
        reused=reused,
        seconds=time.perf_counter() - t0,
    )


def _count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _existing_build(out: Path, fingerprint: str) -> dict[str, Any] | None:
    """The counts of a complete catalog built with ``fingerprint`` in ``out``, else None."""
    try:
        meta = json.loads((out / "build.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("fingerprint") != fingerprint:
        return None
    counts = meta.get("counts", {})
    needed = ["truth.jsonl", "README.md", "samples.png"] + [f"{s}/manifest.jsonl" for s in SPLITS]
    if not all((out / name).is_file() for name in needed):
        return None
    for split in SPLITS:
        if _count_files(out / split / "images") != counts.get("images_per_split", {}).get(split):
            return None
    return counts


def _item_id(split: str, j: int, n: int) -> str:
    return f"{split}-{j:0{max(6, len(str(n - 1)))}d}"


def _save_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, format="PNG", compress_level=1)


def _write_item(
    split_dir: Path, item_id: str, shard: str, grey: np.ndarray, truth: dict[str, str],
    cfg: DemoConfig, rng: np.random.Generator,
) -> tuple[dict[str, Any], dict[str, Any] | None, np.ndarray]:  # fmt: skip
    """Render and save one item's images; return its manifest row, noise and main image."""
    meta = make_metadata(
        truth, rng, missing_rate=cfg.missing_rate, wrong_rate=cfg.wrong_rate,
        synonym_rate=cfg.synonym_rate,
    )  # fmt: skip
    prem, alpha = demo_render.garment(grey, truth["colour"], truth["pattern"], cfg.size, rng)
    main = demo_render.compose(prem, alpha, demo_render.background(rng, view=False))
    rel = [f"images/{shard}/{item_id}.png"]
    _save_png(main, split_dir / rel[0])
    for v in range(1, cfg.views + 1):
        vp, va = demo_render.view(prem, alpha, rng)
        rel.append(f"images/{shard}/{item_id}-{v}.png")
        _save_png(demo_render.compose(vp, va, demo_render.background(rng, view=True)),
                  split_dir / rel[-1])  # fmt: skip
    row = {
        "id": item_id, "image": rel[0], "title": meta["title"],
        "description": meta["description"], "extra_images": rel[1:],
        "attributes": meta["attributes"],
    }  # fmt: skip
    return row, meta["noise"], main


@dataclass(frozen=True)
class _Chunk:
    """A run of consecutive items of one split, rendered together (in a worker or here)."""

    split: str
    split_dir: Path
    source: str
    n: int  # items in the whole split (for id and shard widths)
    start: int
    source_index: np.ndarray
    colour: np.ndarray
    pattern: np.ndarray


def _shard(j: int, n: int) -> str:
    return f"{j // SHARD:0{max(3, len(str((n - 1) // SHARD)))}d}"


def _render_chunk(
    chunk: _Chunk, cfg: DemoConfig, images: np.ndarray, labels: np.ndarray
) -> list[tuple[dict[str, Any], dict[str, Any], np.ndarray | None]]:
    """Write a chunk's images; return (manifest row, truth row, main image or None) per item."""
    names = {g: list(VOCABULARY[g]) for g in GROUPS}
    out = []
    for k in range(len(chunk.source_index)):
        j = chunk.start + k
        src = int(chunk.source_index[k])
        truth = {
            "category": names["category"][int(labels[src])],
            "colour": names["colour"][int(chunk.colour[k])],
            "pattern": names["pattern"][int(chunk.pattern[k])],
        }
        item_id = _item_id(chunk.split, j, chunk.n)
        rng = np.random.default_rng([cfg.seed, _SPLIT_CODE[chunk.split], 1, j])
        row, noise, main = _write_item(
            chunk.split_dir, item_id, _shard(j, chunk.n), images[src], truth, cfg, rng
        )
        truth_row = {
            "id": item_id, "split": chunk.split, **truth,
            "source": chunk.source, "source_index": src, "noise": noise,
        }  # fmt: skip
        keep = chunk.split == "train" and j < _GRID_ITEMS
        out.append((row, truth_row, main if keep else None))
    return out


_WORKER_SOURCES: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _init_worker(source: str) -> None:
    for name in ("train", "t10k"):
        _WORKER_SOURCES[name] = load_set(source, name)


def _render_chunk_in_worker(
    chunk: _Chunk, cfg: DemoConfig
) -> list[tuple[dict[str, Any], dict[str, Any], np.ndarray | None]]:
    return _render_chunk(chunk, cfg, *_WORKER_SOURCES[chunk.source])


def _chunks(plans: list[SplitPlan], root: Path, size: int) -> Iterator[_Chunk]:
    for plan in plans:
        n = len(plan.source_index)
        for start in range(0, n, size):
            stop = min(n, start + size)
            yield _Chunk(
                plan.name, root / plan.name, plan.source, n, start,
                plan.source_index[start:stop], plan.colour[start:stop],
                plan.pattern[start:stop],
            )  # fmt: skip


def _build_into(
    root: Path, cfg: DemoConfig, fingerprint: str, progress: bool, workers: int
) -> dict[str, Any]:
    """Write the whole catalog under ``root`` (a fresh folder); return its counts."""
    sources = {name: load_set(cfg.source, name) for name in ("train", "t10k")}
    plans = plan_splits(cfg, len(sources["train"][1]), len(sources["t10k"][1]))
    for plan in plans:
        n = len(plan.source_index)
        for j in range(0, n, SHARD):
            (root / plan.name / "images" / _shard(j, n)).mkdir(parents=True)
    stats = {p.name: {k: Counter[str]() for k in (*GROUPS, "noise")} for p in plans}
    grid_tiles: list[tuple[np.ndarray, str]] = []
    chunks = list(_chunks(plans, root, _CHUNK))
    executor = None
    if workers > 1:
        executor = ProcessPoolExecutor(
            workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
            initargs=(str(cfg.source),),
        )  # fmt: skip
        results = executor.map(_render_chunk_in_worker, chunks, [cfg] * len(chunks))
    else:
        results = (_render_chunk(c, cfg, *sources[c.source]) for c in chunks)
    bar = tqdm(total=sum(_count(p) for p in plans), desc="demo catalog", unit="item",
               disable=not progress)  # fmt: skip
    try:
        with ExitStack() as stack:
            truth_fh = stack.enter_context((root / "truth.jsonl").open("w", encoding="utf-8"))
            manifests = {
                p.name: stack.enter_context(
                    (root / p.name / "manifest.jsonl").open("w", encoding="utf-8")
                )
                for p in plans
            }
            for chunk, rendered in zip(chunks, results, strict=True):
                st = stats[chunk.split]
                for row, truth_row, main in rendered:
                    manifests[chunk.split].write(json.dumps(row, ensure_ascii=False) + "\n")
                    truth_fh.write(json.dumps(truth_row) + "\n")
                    for g in GROUPS:
                        st[g][truth_row[g]] += 1
                    if truth_row["noise"]:
                        st["noise"][truth_row["noise"]["kind"]] += 1
                    if main is not None:
                        grid_tiles.append((main, row["title"]))
                bar.update(len(rendered))
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    demo_render.sample_grid(grid_tiles).save(root / "samples.png", optimize=False)
    counts: dict[str, Any] = {p.name: _count(p) for p in plans}
    counts["images_per_split"] = {p.name: _count(p) * (1 + cfg.views) for p in plans}
    counts["images"] = sum(counts["images_per_split"].values())
    counts["source_images"] = {p.name: p.distinct for p in plans}
    (root / "README.md").write_text(datasheet(cfg, plans, counts, stats), encoding="utf-8")
    meta = {"builder": "stylesearch.catalog.demo", "builder_version": BUILDER_VERSION,
            "fingerprint": fingerprint, "config": cfg.to_dict(), "counts": counts}  # fmt: skip
    (root / "build.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return counts


def _count(plan: SplitPlan) -> int:
    return len(plan.source_index)


def build_demo_catalog(
    out_dir: str | Path,
    config: DemoConfig | None = None,
    *,
    progress: bool = True,
    workers: int = 1,
) -> DemoCatalog:
    """Build the demo catalog into ``out_dir`` (or find it already built) and describe it.

    ``workers`` > 1 renders in that many processes (the output is the same for any number);
    about 300 items/s per worker at 64 px with one extra view.

    Raises DemoSourceMissing (with how to install Fashion-MNIST) when the source files are
    absent, DemoConfigError (a ValueError) for an unusable config, NotADemoCatalog (a
    FileExistsError) when ``out_dir`` is a non-empty folder that is not a demo catalog (it is
    never overwritten).
    """
    t0 = time.perf_counter()
    cfg = (config or DemoConfig()).validate()
    out = Path(out_dir)
    files = source_files(cfg.source)
    fingerprint = _fingerprint(cfg, files)
    counts = _existing_build(out, fingerprint)
    if counts is not None:
        return _catalog(out, counts, True, t0)
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / "build.json").is_file())
    ):
        raise NotADemoCatalog(
            f"{out} exists and is not a demo catalog (no build.json); choose a new or empty "
            "folder, the builder never overwrites other files"
        )
    # a catalog can be built again: the swap needs no lock and no sync of its many files
    with FolderSwap(out, durable=False) as folder:
        counts = _build_into(folder.tmp, cfg, fingerprint, progress, workers)
        folder.commit()
    return _catalog(out, counts, False, t0)
