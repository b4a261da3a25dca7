"""VSE-style bidirectional triplet loss with in-batch negatives (the paper's baseline).

For anchor image ``I_i`` the positive is ``T_i`` and the negatives are the other texts of the batch;
for anchor text ``T_i`` the positive is ``I_i`` and the negatives are the other images. With cosine
similarities ``s_pos = S(I_i, T_i)`` and ``s_neg`` of one chosen negative, the per-anchor loss is
the hinge ``[margin + s_neg - s_pos]_+``.

Negative selection (per anchor):

* ``"hardest"`` (VSE++): the negative with the largest similarity to the anchor.
* ``"semi-hard"``: the hardest negative that is still *less* similar to the anchor than the
  positive, i.e. ``max {s_neg : s_neg < s_pos}``; such a negative is correctly ranked but may sit
  inside the margin (then it gives a loss). When no negative is below ``s_pos`` the anchor falls
  back to the hardest negative. (FaceNet's semi-hard band ``s_pos - margin < s_neg < s_pos`` is
  the subset of these that gives a non-zero hinge; the largest one below ``s_pos`` lies in the
  band whenever the band is non-empty, so both definitions give the same loss.)

A batch of one item has no negatives: its loss is 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from stylesearch.config import NEGATIVES
from stylesearch.losses.mbmr import cosine_similarity_matrix, reduce_loss


def _one_direction(sim: Tensor, margin: float, negatives: str) -> Tensor:
    """Per-anchor hinge for anchors on the rows of ``sim`` ``(N, N)``; positives on the diagonal."""
    n = sim.shape[0]
    pos = sim.diagonal()  # (N,)
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    neg_inf = torch.tensor(float("-inf"), dtype=sim.dtype, device=sim.device)
    off_diag = sim.masked_fill(eye, neg_inf)
    hardest = off_diag.max(dim=1).values if n > 1 else pos.new_full((n,), float("-inf"))
    if negatives == "hardest":
        chosen = hardest
    else:
        below = off_diag.masked_fill(off_diag >= pos.unsqueeze(1), neg_inf)
        semi = below.max(dim=1).values if n > 1 else hardest
        chosen = torch.where(torch.isfinite(semi), semi, hardest)
    hinge = (margin + chosen - pos).clamp(min=0)
    # anchors without any negative (N == 1) contribute 0 (and no NaN gradients)
    return torch.where(torch.isfinite(chosen), hinge, torch.zeros_like(hinge))


def triplet_loss(
    image_features: Tensor,
    text_features: Tensor,
    *,
    margin: float = 0.2,
    negatives: str = "hardest",
    reduction: str = "mean",
) -> dict[str, Tensor]:
    """Bidirectional hinge triplet loss on cosine similarity with in-batch negatives.

    Args:
        image_features: ``(N, D)`` unnormalised ``f_I``.
        text_features: ``(N, D)`` unnormalised ``f_T``; row i matches image row i.
        margin: the hinge margin.
        negatives: "hardest" or "semi-hard" (see the module docstring).
        reduction: "mean" over anchors or "sum".

    Returns:
        ``{"triplet_i2t": image anchors, "triplet_t2i": text anchors, "triplet": their sum}``,
        0-d float32 tensors.
    """
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
    if image_features.shape[0] != text_features.shape[0]:
        raise ValueError(
            f"need as many images as texts, got {image_features.shape[0]} and "
            f"{text_features.shape[0]}"
        )
    sim = cosine_similarity_matrix(image_features, text_features)  # sim[i, j] = S(I_i, T_j)
    i2t = reduce_loss(_one_direction(sim, margin, negatives), reduction)
    t2i = reduce_loss(_one_direction(sim.t(), margin, negatives), reduction)
    return {"triplet_i2t": i2t, "triplet_t2i": t2i, "triplet": i2t + t2i}
