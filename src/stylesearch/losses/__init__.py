"""stylesearch.losses: pure loss functions returning named terms (PAPER.md "Losses").

``L = L_match + attribute_weight * L_a (+ same_item_weight * L_same)`` where ``L_match`` is MBMR
(default) or the triplet loss, and ``L_same`` the optional same-item term.
"""

from __future__ import annotations

from torch import Tensor

from stylesearch.config import LossConfig
from stylesearch.losses.attribute import attribute_loss, attribute_pos_weight, multi_hot
from stylesearch.losses.mbmr import cosine_similarity_matrix, mbmr_loss
from stylesearch.losses.same_item import same_item_loss
from stylesearch.losses.triplet import triplet_loss

__all__ = [
    "attribute_loss",
    "attribute_pos_weight",
    "compute_losses",
    "cosine_similarity_matrix",
    "mbmr_loss",
    "multi_hot",
    "same_item_loss",
    "triplet_loss",
]


def compute_losses(
    outputs: dict[str, Tensor],
    words: Tensor,
    config: LossConfig,
    *,
    pos_weight: Tensor | None = None,
    gathered: tuple[Tensor, Tensor] | None = None,
) -> dict[str, Tensor]:
    """All loss terms of one step, by name.

    Args:
        outputs: ``JointModel.forward`` outputs: ``image_features`` ``(B, D)``,
            ``text_features`` ``(B, D)``, ``attribute_logits`` ``(B, V)``, ``temperature``,
            and ``second_image_features`` ``(B, D)`` (the colour-scrambled second views) when
            ``config.same_item_weight > 0``.
        words: ``(B, L)`` int64 word ids padded with -1: the attribute targets.
        config: the loss config.
        pos_weight: ``(V,)`` from :func:`attribute_pos_weight`; required when
            ``config.attribute_weighting == "pos_weight"``, refused when it is "none".
        gathered: all ranks' ``(image_features, text_features)`` ``(B * world, D)`` from
            :func:`stylesearch.training.distributed.gather_features`; when given, the match loss
            uses them (negatives from every rank). The attribute loss is always local.

    Returns:
        the match terms (``mbmr_i2t``, ``mbmr_t2i``, ``mbmr`` or ``triplet_i2t``,
        ``triplet_t2i``, ``triplet``; ``losses[config.name]`` is the match loss), ``attribute``,
        ``same_item`` (when its weight is > 0) and ``total = match + config.attribute_weight *
        attribute + config.same_item_weight * same_item``.
    """
    if config.attribute_weighting == "pos_weight" and pos_weight is None:
        raise ValueError(
            "attribute_weighting = 'pos_weight' needs pos_weight= "
            "(attribute_pos_weight(vocab.counts, vocab.n_items, ...))"
        )
    if config.attribute_weighting == "none" and pos_weight is not None:
        raise ValueError("attribute_weighting = 'none' but a pos_weight was given")
    if config.attribute_weighting not in ("none", "pos_weight"):
        raise ValueError(f"unknown attribute_weighting {config.attribute_weighting!r}")

    images, texts = (
        gathered if gathered is not None else (outputs["image_features"], outputs["text_features"])
    )
    if config.name == "mbmr":
        terms = mbmr_loss(images, texts, outputs["temperature"], reduction=config.reduction)
    elif config.name == "triplet":
        terms = triplet_loss(
            images,
            texts,
            margin=config.margin,
            negatives=config.negatives,
            reduction=config.reduction,
        )
    else:
        raise ValueError(f"unknown loss {config.name!r}; choose 'mbmr' or 'triplet'")

    logits = outputs["attribute_logits"]
    targets = multi_hot(words.to(logits.device), logits.shape[1])
    terms.update(attribute_loss(logits, targets, pos_weight=pos_weight, reduction=config.reduction))
    terms["total"] = terms[config.name] + config.attribute_weight * terms["attribute"]
    if config.same_item_weight > 0:
        if "second_image_features" not in outputs:
            raise ValueError("same_item_weight > 0 needs outputs['second_image_features']")
        terms.update(
            same_item_loss(
                outputs["image_features"],
                outputs["second_image_features"],
                temperature=config.same_item_temperature,
                dims=config.same_item_dims or None,
            )
        )
        terms["total"] = terms["total"] + config.same_item_weight * terms["same_item"]
    return terms
