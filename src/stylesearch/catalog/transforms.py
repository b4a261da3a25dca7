"""Image transforms: PIL RGB image -> normalised ``(3, S, S) float32`` tensor.

Training augmentation is deliberately colour-safe: colour is an attribute users search for
("the same dress in red"), so there is no hue or saturation jitter and no greyscale; only a crop,
a horizontal flip and mild brightness / contrast changes, which keep every pixel's hue. The one
exception is the second view of the same-item term (:func:`same_item_transform`), whose colours
are scrambled on purpose: that term must match two views by their shape.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torchvision import transforms as T

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ChannelShuffle",
    "eval_transform",
    "same_item_transform",
    "train_transform",
]

#: Per-channel RGB mean and standard deviation of ImageNet (for pretrained backbones).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Training crop: area fraction and aspect ratio range of RandomResizedCrop.
TRAIN_CROP_SCALE: tuple[float, float] = (0.7, 1.0)
TRAIN_CROP_RATIO: tuple[float, float] = (0.85, 1.18)
#: Brightness and contrast factors are drawn from [1 - j, 1 + j].
TRAIN_BRIGHTNESS: float = 0.2
TRAIN_CONTRAST: float = 0.2

ImageTransform = Callable[[Image.Image], torch.Tensor]


def _check_size(image_size: int) -> None:
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")


def train_transform(image_size: int) -> ImageTransform:
    """Random augmentation for training.

    RandomResizedCrop(``image_size``, scale=(0.7, 1.0), ratio=(0.85, 1.18)), horizontal flip,
    brightness / contrast jitter of +-20 % (no hue / saturation change), ToTensor, ImageNet
    normalisation.

    Returns:
        A callable: RGB ``PIL.Image.Image`` -> ``(3, image_size, image_size) float32`` tensor.
        Randomness comes from torch's global generator (seeded per DataLoader worker).
    """
    _check_size(image_size)
    return T.Compose(
        [
            T.RandomResizedCrop(
                image_size, scale=TRAIN_CROP_SCALE, ratio=TRAIN_CROP_RATIO, antialias=True
            ),
            T.RandomHorizontalFlip(),
            T.ColorJitter(brightness=TRAIN_BRIGHTNESS, contrast=TRAIN_CONTRAST),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class ChannelShuffle(torch.nn.Module):
    """A random permutation of a ``(3, H, W)`` tensor's colour channels (torch's generator)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image[torch.randperm(image.shape[0])]


#: the same-item view's colour scrambling: hue turned anywhere, saturation changed, channels
#: permuted, and one view in three greyscale
SAME_ITEM_HUE: float = 0.5
SAME_ITEM_SATURATION: tuple[float, float] = (0.3, 1.7)
SAME_ITEM_GREYSCALE: float = 1 / 3


def same_item_transform(image_size: int) -> ImageTransform:
    """The second view of the same-item term: :func:`train_transform`'s crop, flip and
    brightness / contrast, then colours scrambled (hue +-180 degrees, saturation x0.3-1.7, a
    channel permutation, greyscale one time in three), so only the shape and shading are left
    to match."""
    _check_size(image_size)
    return T.Compose(
        [
            T.RandomResizedCrop(
                image_size, scale=TRAIN_CROP_SCALE, ratio=TRAIN_CROP_RATIO, antialias=True
            ),
            T.RandomHorizontalFlip(),
            T.ColorJitter(
                brightness=TRAIN_BRIGHTNESS,
                contrast=TRAIN_CONTRAST,
                saturation=SAME_ITEM_SATURATION,
                hue=SAME_ITEM_HUE,
            ),  # fmt: skip
            T.ToTensor(),
            ChannelShuffle(),
            T.RandomGrayscale(SAME_ITEM_GREYSCALE),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def eval_transform(image_size: int) -> ImageTransform:
    """Deterministic transform for indexing and queries.

    Resize the shorter side to ``image_size``, centre-crop ``image_size`` x ``image_size``,
    ToTensor, ImageNet normalisation.

    Returns:
        A callable: RGB ``PIL.Image.Image`` -> ``(3, image_size, image_size) float32`` tensor.
    """
    _check_size(image_size)
    return T.Compose(
        [
            T.Resize(image_size, antialias=True),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
