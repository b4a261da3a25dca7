"""Image transforms: PIL RGB image -> normalised ``(3, S, S) float32`` tensor.

Training augmentation is deliberately colour-safe: colour is an attribute users search for
("the same dress in red"), so there is no hue or saturation jitter and no greyscale; only a crop,
a horizontal flip and mild brightness / contrast changes, which keep every pixel's hue.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torchvision import transforms as T

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "eval_transform", "train_transform"]

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
