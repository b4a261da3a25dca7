"""Mini-Batch Match Retrieval loss (PAPER.md "Losses").

For a mini-batch of N pairs ``(I_i, T_i)`` with cosine similarity ``S(I, T)`` and temperature
``tau``::

    P(T_j | I_i) = exp(S(I_i, T_j) / tau) / sum_k exp(S(I_i, T_k) / tau)
    P(I_j | T_i) = exp(S(I_j, T_i) / tau) / sum_k exp(S(I_k, T_i) / tau)
    L_MBMR = - sum_i log P(T_i | I_i) - sum_i log P(I_i | T_i)

i.e. a symmetric InfoNCE / CLIP loss with the in-batch items as negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def cosine_similarity_matrix(image_features: Tensor, text_features: Tensor) -> Tensor:
    """``(N, D)``, ``(M, D)`` unnormalised -> ``(N, M)`` float32 cosines ``S[i, j] = S(I_i, T_j)``.

    Zero rows (an empty bag of words) have cosine 0 with everything.
    """
    if image_features.dim() != 2 or text_features.dim() != 2:
        raise ValueError("features must be 2-d (N, D)")
    if image_features.shape[1] != text_features.shape[1]:
        raise ValueError(
            f"feature dimensions differ: {image_features.shape[1]} vs {text_features.shape[1]}"
        )
    img = F.normalize(image_features.float(), dim=-1)
    txt = F.normalize(text_features.float(), dim=-1)
    return img @ txt.t()


def reduce_loss(per_item: Tensor, reduction: str) -> Tensor:
    """Reduce per-item losses: "mean" or "sum"."""
    if reduction == "mean":
        return per_item.mean()
    if reduction == "sum":
        return per_item.sum()
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def mbmr_loss(
    image_features: Tensor,
    text_features: Tensor,
    temperature: Tensor | float,
    *,
    reduction: str = "mean",
) -> dict[str, Tensor]:
    """MBMR over one batch of matching pairs.

    Args:
        image_features: ``(N, D)`` ``f_I``, unnormalised (normalised here).
        text_features: ``(N, D)`` ``f_T``, unnormalised; row i matches image row i.
        temperature: tau > 0, a 0-d tensor (gradient flows to it) or a float.
        reduction: "sum" is the paper's equation; "mean" divides each direction by N.

    Returns:
        ``{"mbmr_i2t": -sum_i log P(T_i|I_i), "mbmr_t2i": -sum_i log P(I_i|T_i),
        "mbmr": their sum}``, each a 0-d float32 tensor (divided by N for "mean").
    """
    if image_features.shape[0] != text_features.shape[0]:
        raise ValueError(
            f"need as many images as texts, got {image_features.shape[0]} and "
            f"{text_features.shape[0]}"
        )
    logits = cosine_similarity_matrix(image_features, text_features) / temperature
    labels = torch.arange(logits.shape[0], device=logits.device)
    # row i of logits: image i against every text -> P(T_j | I_i)
    i2t = reduce_loss(F.cross_entropy(logits, labels, reduction="none"), reduction)
    # column i: text i against every image -> P(I_k | T_i)
    t2i = reduce_loss(F.cross_entropy(logits.t(), labels, reduction="none"), reduction)
    return {"mbmr_i2t": i2t, "mbmr_t2i": t2i, "mbmr": i2t + t2i}
