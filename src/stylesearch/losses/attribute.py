"""Attribute extraction loss ``L_a`` (PAPER.md "Losses", our choice where the paper is silent).

The attribute head predicts, for every vocabulary word w, the probability ``p_w(I)`` that w
describes image I. Targets are the words of the item's own metadata (a multi-hot vector), a noisy
label: absent words are weak negatives (metadata is incomplete), present words are stronger
positives.

Loss: binary cross-entropy with logits, where the positive term of word w is weighted by
``pos_weight[w]`` against the frequency imbalance (word frequencies differ by orders of
magnitude, so without weighting a rare word's few positives drown in its negatives)::

    l[b, w] = -( pos_weight[w] * y[b, w] * log sigmoid(x[b, w])
                 + (1 - y[b, w]) * log(1 - sigmoid(x[b, w])) )

``pos_weight`` comes from :func:`attribute_pos_weight` (or is all ones: unweighted BCE).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def multi_hot(words: Tensor, vocab_size: int) -> Tensor:
    """``(B, L)`` int64 word ids padded with -1 -> ``(B, V)`` float32 targets in {0, 1}.

    ``y[b, w] = 1`` iff word w occurs in row b (repeats count once); negative ids are padding.
    """
    if words.dim() != 2:
        raise ValueError(f"expected word ids of shape (B, L), got {tuple(words.shape)}")
    if words.numel() and int(words.max()) >= vocab_size:
        raise ValueError(f"word id {int(words.max())} out of range for {vocab_size} words")
    batch = words.shape[0]
    out = torch.zeros(batch, vocab_size + 1, dtype=torch.float32, device=words.device)
    index = torch.where(words >= 0, words.long(), torch.full_like(words.long(), vocab_size))
    out.scatter_(1, index, 1.0)  # padding lands in the extra column, dropped below
    return out[:, :vocab_size]


def attribute_pos_weight(
    counts: Sequence[int] | Tensor,
    n_items: int,
    *,
    power: float = 0.5,
    max_weight: float = 30.0,
) -> Tensor:
    """Per-word weight of the positives in the attribute BCE.

    With ``N = n_items`` training items and ``n_w = counts[w]`` items whose text has word w::

        pos_weight[w] = clamp( ((N - n_w) / n_w) ** power , 1, max_weight )

    * ``(N - n_w) / n_w`` is the word's negatives-to-positives ratio; ``power`` in [0, 1] softens
      it (0.5 = square root, 1 = fully balanced, 0 = no weighting).
    * The lower bound 1 means a positive never counts less than a negative: words present in
      more than half of the items are not down-weighted (their negatives are the noisiest
      labels, since metadata omits words far more often than it invents them).
    * The upper bound ``max_weight`` keeps very rare words from dominating; ``n_w = 0`` (a word
      unseen in the training items) gets ``max_weight`` (the limit as ``n_w -> 0``; 1 when
      ``power == 0``); ``n_w >= N`` gets 1.

    Returns:
        ``(V,)`` float32, every value in ``[1, max_weight]``; rarer words never weigh less.
    """
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    if power < 0 or max_weight < 1:
        raise ValueError(f"need power >= 0 and max_weight >= 1, got {power}, {max_weight}")
    n = torch.as_tensor(counts, dtype=torch.float64).flatten()
    if n.numel() and float(n.min()) < 0:
        raise ValueError("word counts must be >= 0")
    ratio = torch.where(n > 0, (n_items - n).clamp(min=0) / n.clamp(min=1), float("inf"))
    weight = ratio.pow(power).clamp(min=1.0, max=max_weight)
    return weight.to(torch.float32)


def attribute_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    pos_weight: Tensor | None = None,
    reduction: str = "mean",
) -> dict[str, Tensor]:
    """Weighted multi-label BCE of the attribute head.

    Args:
        logits: ``(B, V)`` attribute logits.
        targets: ``(B, V)`` multi-hot {0, 1} (see :func:`multi_hot`).
        pos_weight: ``(V,)`` weight of each word's positive term, or None (all ones).
        reduction: "mean" = mean over the batch AND the words (``sum / (B * V)``);
            "sum" = sum over words and over the batch.

    Returns:
        ``{"attribute": 0-d float32 tensor}``.
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
    if pos_weight is not None:
        pos_weight = pos_weight.to(device=logits.device, dtype=torch.float32)
        if pos_weight.shape != (logits.shape[1],):
            raise ValueError(
                f"pos_weight must have shape ({logits.shape[1]},), got {tuple(pos_weight.shape)}"
            )
    per_entry = F.binary_cross_entropy_with_logits(
        logits.float(), targets.float(), pos_weight=pos_weight, reduction="none"
    )
    if reduction == "mean":
        value = per_entry.mean()
    elif reduction == "sum":
        value = per_entry.sum()
    else:
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    return {"attribute": value}
