"""The look-aware attribute head: ``p`` from ``f_I`` and the look's grid together.

The attribute head of the paper reads ``f_I`` alone, and ``f_I`` is trained against the words,
so garments that share their words' colours and patterns but differ in cut (a shirt, a coat, a
pullover) sit close in it. The look's grid (:meth:`stylesearch.model.look.ShapeLook.grid`) holds
the cut. :class:`LookHead` is a small MLP on both: the standardised ``[f_I; grid]``, one hidden
ReLU layer, one logit per vocabulary word. It is fitted after training, like the look itself, on
frozen features of the training catalog (:meth:`LookHead.fit`), and saved with the model's weights
as buffers, so the optimiser and DDP never see it. When fitted, it is what gives the model's
``p`` (:meth:`stylesearch.model.joint.JointModel.attribute_probs`): the index, the soft filter,
each word's grounding and the synonyms all read it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FIT_BATCH", "FIT_STEPS", "LookHead"]

#: steps of :meth:`LookHead.fit`, each on ``FIT_BATCH`` random rows (all of them when fewer)
FIT_STEPS = 400
FIT_BATCH = 512
#: dropout on the input and on the hidden layer while fitting
DROPOUT = (0.1, 0.3)
#: a word's positives weigh its negatives per positive, at most this
MAX_POS_WEIGHT = 50.0


class LookHead(nn.Module):
    """``f_I`` ``(B, D)`` and grids ``(B, G)`` -> attribute logits ``(B, V)``.

    Args:
        features: D, the dimension of ``f_I``.
        cells: G, the cells of the look's grid.
        hidden: the hidden layer's width, >= 1.
        vocab_size: V.
    """

    def __init__(self, features: int, cells: int, hidden: int, vocab_size: int) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"the look head's hidden width must be >= 1, got {hidden}")
        width = features + cells
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))
        self.register_buffer("weight1", torch.zeros(hidden, width))
        self.register_buffer("bias1", torch.zeros(hidden))
        self.register_buffer("weight2", torch.zeros(vocab_size, hidden))
        self.register_buffer("bias2", torch.zeros(vocab_size))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def forward(self, features: Tensor, grids: Tensor) -> Tensor:
        """Logits ``(B, V)`` of ``f_I`` and the look's grids of the same images."""
        x = (torch.cat([features.float(), grids.float()], dim=-1) - self.mean) / self.scale
        return F.linear(F.relu(F.linear(x, self.weight1, self.bias1)), self.weight2, self.bias2)

    @torch.no_grad()
    def fit(self, features: Tensor, grids: Tensor, labels: Tensor, *, seed: int = 0) -> float:
        """Fit on ``features`` ``(n, D)``, ``grids`` ``(n, G)`` and their words ``labels``
        ``(n, V)`` (bool): inputs standardised by their mean and standard deviation; AdamW
        (lr 1e-3, weight decay 1e-4) on the binary cross-entropy, each word's positives weighted
        by its negatives per positive (at most ``MAX_POS_WEIGHT``), ``FIT_STEPS`` steps of
        ``FIT_BATCH`` random rows. Deterministic for a ``seed``; leaves the global random state
        alone. Returns the last step's loss."""
        n = len(features)
        if n < 2 or len(grids) != n or len(labels) != n:
            raise ValueError(
                f"fitting the look head needs at least 2 rows of features, grids and labels, "
                f"got {n}, {len(grids)} and {len(labels)}"
            )
        x = torch.cat([features.float(), grids.float()], dim=-1)
        mean, scale = x.mean(dim=0), x.std(dim=0) + 1e-6
        x = (x - mean) / scale
        y = labels.float()
        share = y.mean(dim=0).clamp_min(1e-4)
        pos_weight = ((1 - share) / share).clamp(max=MAX_POS_WEIGHT)
        hidden, vocab = self.weight1.shape[0], self.weight2.shape[0]
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(seed)
            net = nn.Sequential(
                nn.Dropout(DROPOUT[0]), nn.Linear(x.shape[1], hidden), nn.ReLU(),
                nn.Dropout(DROPOUT[1]), nn.Linear(hidden, vocab),
            ).to(x.device)  # fmt: skip
            opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
            for _ in range(FIT_STEPS):
                rows = torch.randint(n, (min(FIT_BATCH, n),), device=x.device)
                opt.zero_grad()
                loss = F.binary_cross_entropy_with_logits(
                    net(x[rows]), y[rows], pos_weight=pos_weight
                )
                loss.backward()
                opt.step()
        for buffer, value in zip(
            (self.mean, self.scale, self.weight1, self.bias1, self.weight2, self.bias2),
            (mean, scale, net[1].weight, net[1].bias, net[4].weight, net[4].bias),
            strict=True,
        ):
            buffer.copy_(value.detach())
        self.fitted.fill_(True)
        return float(loss)
