"""The same-item term: two views of one item should embed alike, views of other items apart.

MBMR and the attribute loss only ask the image embedding to match the words, so two items with
the same words are interchangeable to it and nothing teaches it the silhouette. This term is a
symmetric InfoNCE between two views of every item in the batch: the training view (as MBMR sees
it) and a second view (another image of the item when it has one, else the same image) whose
colours are scrambled (:func:`stylesearch.catalog.transforms.same_item_transform`), so matching
them needs the shape, not the colour. It acts on the first ``dims`` coordinates of the
embedding only, leaving the others free to carry colour for the words and the attribute head.

``L_same = (CE(S / tau, diag) + CE(S^T / tau, diag)) / 2`` with ``S_ij = cos(a_i, b_j)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["same_item_loss"]


def same_item_loss(
    first: Tensor, second: Tensor, *, temperature: float, dims: int | None = None
) -> dict[str, Tensor]:
    """Symmetric InfoNCE between two views of the same ``B`` items.

    Args:
        first, second: ``(B, D)`` embeddings of the two views (row ``i`` is item ``i``).
        temperature: ``tau`` > 0.
        dims: use the first ``dims`` coordinates (default: all ``D``).

    Returns:
        ``{"same_item": scalar}``, the mean over items of both directions' cross-entropy.
    """
    if first.shape != second.shape or first.ndim != 2:
        raise ValueError(f"need two (B, D) views of the same shape, got {first.shape} and "
                         f"{second.shape}")  # fmt: skip
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if dims is not None:
        if not 1 <= dims <= first.shape[1]:
            raise ValueError(f"dims must be in 1..{first.shape[1]}, got {dims}")
        first, second = first[:, :dims], second[:, :dims]
    a = F.normalize(first.float(), dim=-1)
    b = F.normalize(second.float(), dim=-1)
    logits = a @ b.T / temperature
    target = torch.arange(len(a), device=a.device)
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    return {"same_item": loss}
