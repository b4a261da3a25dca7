"""PyTorch datasets over a catalog: (image, bag of words) pairs for training, images for indexing.

Images are read with :func:`~stylesearch.catalog.images.load_image` (same checks as the catalog
loader), so a file that changed since the catalog was validated fails with a clear reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from stylesearch.catalog.images import DEFAULT_MAX_PIXELS, ImageError, load_image
from stylesearch.catalog.manifest import CatalogItem

__all__ = [
    "PAD",
    "EpochSampler",
    "ImageDataset",
    "PairDataset",
    "collate_images",
    "collate_pairs",
]

#: Padding value of the ``words`` batch tensor (never a vocabulary id).
PAD: int = -1

ImageTransform = Callable[[Image.Image], torch.Tensor]


def _load(
    path: Path, transform: ImageTransform, max_pixels: int, what: str, shrink_to: int | None = None
) -> torch.Tensor:
    try:
        image = load_image(path, max_pixels=max_pixels, shrink_to=shrink_to)
    except ImageError as exc:
        raise type(exc)(f"{what}: {exc}") from None  # same kind
    return transform(image)


class PairDataset(Dataset[dict[str, Any]]):
    """Item ``i`` -> ``{"image": (3, S, S) float32, "words": (L_i,) int64, "index": i}``.

    ``bags[i]`` are the vocabulary ids of item ``i``'s text (possibly empty). With
    ``use_extra_images`` the image is drawn uniformly from ``item.all_images``; the draw depends
    only on ``(seed, epoch, index)``, so it is the same in any DataLoader worker and across runs.

    Two ways to say the epoch:

    - ``dataset[(epoch, i)]`` (what :class:`EpochSampler` feeds it): the epoch travels with the
      index, so persistent DataLoader workers, which keep their own copy of the dataset, see
      it. The random augmentation is then seeded from ``(seed, epoch, i)`` too, so a sample is
      the same whatever the worker, the number of workers or a resume in between;
    - ``dataset[i]`` after :meth:`set_epoch`: the augmentation uses torch's global generator.

    With ``second_transform`` (the same-item term) a sample also holds ``"image2"``: another
    image of the item (the one of its views not drawn for ``"image"``, or the same image when
    it has one) through ``second_transform``.
    """

    def __init__(
        self,
        items: Sequence[CatalogItem],
        bags: Sequence[Sequence[int]],
        transform: ImageTransform,
        *,
        use_extra_images: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        seed: int = 0,
        second_transform: ImageTransform | None = None,
    ) -> None:
        if len(items) != len(bags):
            raise ValueError(f"{len(items)} items but {len(bags)} bags of words")
        self.items = items
        # bags as one flat int64 array + offsets (CSR): no per-item Python objects, which keeps
        # memory flat in forked DataLoader workers.
        lengths = np.fromiter((len(bag) for bag in bags), dtype=np.int64, count=len(bags))
        self._offsets = np.zeros(len(bags) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self._offsets[1:])
        self._words = np.fromiter(
            (word for bag in bags for word in bag), dtype=np.int64, count=int(self._offsets[-1])
        )
        self.transform = transform
        self.second_transform = second_transform
        self.use_extra_images = use_extra_images
        self.max_pixels = max_pixels
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose image views :meth:`image_path` draws."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def _view(self, index: int, epoch: int | None) -> int:
        """Which of item ``index``'s views (``item.all_images``) ``epoch`` draws."""
        item = self.items[index]
        if not self.use_extra_images or not item.extra_images:
            return 0
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else epoch, index])
        return int(rng.integers(len(item.all_images)))

    def image_path(self, index: int, epoch: int | None = None) -> Path:
        """The image file item ``index`` uses in ``epoch`` (default: the :meth:`set_epoch` one)."""
        return self.items[index].all_images[self._view(index, epoch)]

    def second_path(self, index: int, epoch: int | None = None) -> Path:
        """The image of the same-item view: the next of the item's views after
        :meth:`image_path`'s (the same image for an item with one)."""
        views = self.items[index].all_images
        return views[(self._view(index, epoch) + 1) % len(views)]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(key, tuple):
            epoch, index = int(key[0]), int(key[1])
            seed = int(np.random.SeedSequence([self.seed, epoch, index, 1]).generate_state(1)[0])
            path = self.image_path(index, epoch)
        else:
            index, seed = int(key), None
            path = self.image_path(index)
        what = f"item {self.items[index].id!r}"
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:  # the caller's generator is left as it was
                torch.manual_seed(seed)
            image = _load(path, self.transform, self.max_pixels, what)
            second = None
            if self.second_transform is not None:
                epoch_of = key[0] if isinstance(key, tuple) else None
                second = _load(
                    self.second_path(index, epoch_of), self.second_transform, self.max_pixels, what
                )
        start, stop = self._offsets[index], self._offsets[index + 1]
        words = torch.from_numpy(self._words[start:stop].copy())
        sample = {"image": image, "words": words, "index": index}
        if second is not None:
            sample["image2"] = second
        return sample


class EpochSampler(Sampler[tuple[int, int]]):
    """``(epoch, index)`` pairs for :class:`PairDataset`, in a shuffled order per epoch.

    ``base``: a sampler with its own ``set_epoch`` (``DistributedSampler``), or ``None`` for a
    permutation of ``range(n)`` drawn from ``seed + epoch``. Call :meth:`set_epoch` before each
    epoch; the DataLoader's workers can then persist across epochs.
    """

    def __init__(self, n: int, seed: int, base: Any = None) -> None:
        self.n, self.seed, self.base = int(n), int(seed), base
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self.base is not None:
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base) if self.base is not None else self.n

    def __iter__(self) -> Any:
        epoch = self.epoch
        if self.base is not None:
            order = list(self.base)
        else:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.n, generator=generator).tolist()
        return iter([(epoch, int(i)) for i in order])


class ImageDataset(Dataset[dict[str, Any]]):
    """Image ``i`` -> ``{"image": (3, S, S) float32, "index": i}`` (for embedding a catalog).

    ``shrink_to``: the transform's input size, passed to :func:`load_image` so that a large
    image is decoded exactly as a query upload of it is (the same vector either way).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        transform: ImageTransform,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        shrink_to: int | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.transform = transform
        self.max_pixels = max_pixels
        self.shrink_to = shrink_to

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = _load(
            self.paths[index], self.transform, self.max_pixels, f"image {index}", self.shrink_to
        )
        return {"image": image, "index": index}


def collate_pairs(batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack a list of :class:`PairDataset` samples.

    Returns:
        ``{"images": (B, 3, S, S) float32, "words": (B, L) int64, "index": (B,) int64}`` where
        ``L = max(1, longest bag)`` and short bags are right-padded with :data:`PAD`; plus
        ``"images2"`` when the samples hold same-item views.
    """
    images = torch.stack([sample["image"] for sample in batch])
    bags = [torch.as_tensor(sample["words"], dtype=torch.long).reshape(-1) for sample in batch]
    longest = max([1, *(len(bag) for bag in bags)])
    words = torch.full((len(batch), longest), PAD, dtype=torch.long)
    for row, bag in enumerate(bags):
        words[row, : len(bag)] = bag
    index = torch.as_tensor([int(sample["index"]) for sample in batch], dtype=torch.long)
    out = {"images": images, "words": words, "index": index}
    if "image2" in batch[0]:
        out["images2"] = torch.stack([sample["image2"] for sample in batch])
    return out


def collate_images(batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack :class:`ImageDataset` samples: ``{"images": (B, 3, S, S) float32, "index": (B,)
    int64}``."""
    images = torch.stack([sample["image"] for sample in batch])
    index = torch.as_tensor([int(sample["index"]) for sample in batch], dtype=torch.long)
    return {"images": images, "index": index}
