"""The joint visual-textual model (PAPER.md "Model").

``f_I = W_I backbone(I) + b_I``, ``f_T = sum of word embeddings``, both in R^D; the attribute head
``p_w(I) = sigmoid(W_a f_I + b_a)`` (one output per vocabulary word, in vocabulary order) reads the
*unnormalised* ``f_I``. Similarities are cosines, so the losses and the search normalise. A model
with a look may also carry a look-aware attribute head (:mod:`stylesearch.model.look_head`),
fitted after training; once fitted, it gives the model's ``p`` (:meth:`JointModel.attribute_probs`)
while training's loss keeps the linear head.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylesearch.config import ModelConfig, TextConfig
from stylesearch.model.look import GRID, ShapeLook
from stylesearch.model.look_head import LookHead
from stylesearch.model.towers import TextTower, build_image_backbone

if TYPE_CHECKING:
    from stylesearch.model.grounding import Grounding
    from stylesearch.model.synonyms import Synonyms
    from stylesearch.text.vocabulary import Vocabulary


class JointModel(nn.Module):
    """Image tower, text tower and attribute head sharing one D-dimensional space.

    Args:
        config: the model configuration (backbone, D, temperature...).
        vocab_size: V, the number of vocabulary words (rows of the embedding table, outputs of
            the attribute head).
        load_backbone_weights: load the backbone weights named by ``config`` (pretrained /
            ``weights_path``). :func:`~stylesearch.model.io.load_model` passes ``False``: a saved
            model folder holds every weight.

    Attributes set by :func:`~stylesearch.model.io.load_model` or the training loop (plain
    attributes, not saved in the state dict): ``vocab``, ``text_config``, ``grounding``
    (:class:`~stylesearch.model.grounding.Grounding`, ``None`` when not measured),
    ``synonyms`` (:class:`~stylesearch.model.synonyms.Synonyms`, ``None`` when not learned).
    """

    vocab: Vocabulary | None
    text_config: TextConfig | None
    grounding: Grounding | None
    synonyms: Synonyms | None

    def __init__(
        self, config: ModelConfig, vocab_size: int, *, load_backbone_weights: bool = True
    ) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        self.config = config
        self.vocab_size = vocab_size
        self.vocab = None
        self.text_config = None
        self.grounding = None
        self.synonyms = None
        self._fingerprint: str | None = None

        backbone, n_features = build_image_backbone(config, load_weights=load_backbone_weights)
        self.image_backbone = backbone
        self.image_proj = nn.Linear(n_features, config.embed_dim)
        self.text_tower = TextTower(vocab_size, config.embed_dim)
        self.attribute_head = nn.Linear(config.embed_dim, vocab_size)
        self.log_temperature = nn.Parameter(
            torch.tensor(math.log(config.temperature), dtype=torch.float32),
            requires_grad=config.learn_temperature,
        )
        self.look = (
            ShapeLook(config.image_size, config.look_dim, config.look_kind)
            if config.look_dim
            else None
        )
        self.look_head = (
            LookHead(config.embed_dim, GRID * GRID, config.look_head, vocab_size)
            if self.look is not None and config.look_head
            else None
        )

    @property
    def index_dim(self) -> int:
        """The dimension of the index's vectors: D, plus the look's when the model has one."""
        return self.config.embed_dim + (self.look.dim if self.look is not None else 0)

    # -- temperature -------------------------------------------------------------------------

    def temperature(self) -> Tensor:
        """tau = exp(clamp(log_temperature, log(min_temperature), log(max_temperature))).

        Returns a scalar tensor (0-d, float32). Differentiable inside the clamp range; call
        :meth:`clamp_temperature_` after each optimizer step so the parameter itself never
        drifts outside the range (where its gradient would be zero).
        """
        lo = math.log(self.config.min_temperature)
        hi = math.log(self.config.max_temperature)
        return self.log_temperature.clamp(lo, hi).exp()

    @torch.no_grad()
    def clamp_temperature_(self) -> None:
        """Clamp the ``log_temperature`` parameter into range, in place (after optimizer.step)."""
        lo = math.log(self.config.min_temperature)
        hi = math.log(self.config.max_temperature)
        self.log_temperature.clamp_(lo, hi)

    # -- encoders ----------------------------------------------------------------------------

    def encode_images(self, images: Tensor, *, normalize: bool = False) -> Tensor:
        """``(B, 3, S, S)`` ImageNet-normalised float32 -> ``f_I`` ``(B, D)`` float32.

        With ``normalize=True`` the rows are L2-normalised.
        """
        features = self.image_proj(self.image_backbone(images))
        return F.normalize(features, dim=-1) if normalize else features

    def encode_index(
        self, images: Tensor, features: Tensor | None = None, grids: Tensor | None = None
    ) -> Tensor:
        """The unit vectors the index stores ``(B, index_dim)``: ``n(f_I)``, or with a look
        ``n([n(f_I); look])`` (each part weighs the same; an image whose look is zero keeps
        ``n(f_I)`` and zeros). ``features`` (``f_I``) and ``grids`` (the look's) of ``images``
        when already computed."""
        unit = F.normalize(self.encode_images(images) if features is None else features, dim=-1)
        if self.look is None:
            return unit
        look = self.look.project(self.look.grid(images) if grids is None else grids)
        return F.normalize(torch.cat([unit, look], dim=-1), dim=-1)

    def encode_texts(self, words: Tensor, *, normalize: bool = False) -> Tensor:
        """``(B, L)`` int64 word ids padded with -1 -> ``f_T`` ``(B, D)``: sum of word embeddings.

        An empty bag gives the zero vector (which stays zero when ``normalize=True``).
        """
        features = self.text_tower(words)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_words(self, word_ids: Tensor, *, normalize: bool = False) -> Tensor:
        """``(W,)`` int64 word ids -> ``(W, D)`` single-word embeddings ``f_T(w)``.

        Used by query arithmetic: ``q = f_I + sum f_T(w+) - sum f_T(w-)``.
        """
        features = self.text_tower.embed_words(word_ids)
        return F.normalize(features, dim=-1) if normalize else features

    def attribute_logits(self, image_features: Tensor) -> Tensor:
        """Unnormalised ``f_I`` ``(B, D)`` -> attribute logits ``(B, V)`` (vocabulary order)."""
        return self.attribute_head(image_features)

    def attribute_probs(
        self, images: Tensor | None, features: Tensor | None = None, grids: Tensor | None = None
    ) -> Tensor:
        """``(B, 3, S, S)`` images -> the model's ``p_w(I)`` ``(B, V)`` float32 in [0, 1]: the
        look-aware head's once fitted, else the linear head's. ``features`` (``f_I``) and
        ``grids`` (the look's) of ``images`` when already computed; ``images`` may then be
        None.

        Raises:
            ValueError: ``images`` is None and what the head needs is not given.
        """
        head = self.look_head
        linear = head is None or not head.is_fitted or self.look is None
        if images is None and (features is None or (not linear and grids is None)):
            needs = "features" if linear else "features and grids"
            raise ValueError(f"attribute_probs: give the images, or their {needs}")
        if features is None:
            features = self.encode_images(images)
        if linear:
            return torch.sigmoid(self.attribute_logits(features))
        return torch.sigmoid(head(features, self.look.grid(images) if grids is None else grids))

    def index_rows(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """What the index keeps of ``images``: their vectors (:meth:`encode_index`) and ``p``
        (:meth:`attribute_probs`), from one pass of the backbone and of the look's grid."""
        features = self.encode_images(images)
        grids = self.look.grid(images) if self.look is not None else None
        return (
            self.encode_index(images, features, grids),
            self.attribute_probs(images, features, grids),
        )

    def forward(
        self, images: Tensor, words: Tensor, second_images: Tensor | None = None
    ) -> dict[str, Tensor]:
        """One training step's outputs.

        Args:
            images: ``(B, 3, S, S)`` ImageNet-normalised float32.
            words: ``(B, L)`` int64 word ids padded with -1 (the item's own text).
            second_images: ``(B, 3, S, S)`` second views of the same items (the same-item
                term), encoded in the same forward pass so DDP sees one graph.

        Returns:
            ``image_features`` ``(B, D)`` and ``text_features`` ``(B, D)`` (unnormalised),
            ``attribute_logits`` ``(B, V)``, ``temperature`` (0-d tensor), and
            ``second_image_features`` ``(B, D)`` with ``second_images``.
        """
        if second_images is None:
            image_features = self.encode_images(images)
        else:  # one backbone pass over both views (batch norm sees them together)
            both = self.encode_images(torch.cat([images, second_images]))
            image_features, second = both[: len(images)], both[len(images) :]
        out = {
            "image_features": image_features,
            "text_features": self.encode_texts(words),
            "attribute_logits": self.attribute_logits(image_features),
            "temperature": self.temperature(),
        }
        if second_images is not None:
            out["second_image_features"] = second
        return out

    def fingerprint(self) -> str | None:
        """sha256 (hex) of the ``model.safetensors`` this model was loaded from, else None."""
        return self._fingerprint
