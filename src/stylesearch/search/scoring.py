"""Pure scoring functions: query arithmetic, the soft attribute filter and its bounds.

Scores (PAPER.md "Three search methods"; ``cos`` is the cosine of the query and item vectors):

* ``visual``, ``text``, ``arithmetic``, ``filter-hard``: ``score = cos``.
* ``filter``, ``combined`` (the soft filter): ``score = c~ * p`` with the **rescaled cosine**
  ``c~ = (1 + cos) / 2`` in [0, 1] and the attribute score
  ``p = prod_{w in w+} p_w * prod_{w in w-} max(0, 1 - r p_w)`` in [0, 1], where ``r`` is the
  index's **removal scale** (:attr:`stylesearch.index.fusion.TextFusion.removal_scale`): 1 (the
  paper's ``1 - p_w``) for an index whose ``p`` is the attribute head's alone or fuses the
  item's text by log-odds, ``1 / (1 - b)`` for one that blended the text in at weight ``b``.

Why rescale: the paper multiplies the raw cosine by ``p``. With a negative cosine that product
rewards an *unlikely* item: ``-0.2 * 0.9 = -0.18`` ranks below ``-0.1 * 0.1 = -0.01``, although
the first item is almost as close and nine times more likely to have the wanted attribute. On
``[0, 1]`` the product is monotone increasing in both factors (0.4 * 0.9 = 0.36 > 0.45 * 0.1),
and for positive cosines it ranks as the paper's does whenever ``p`` is equal. The rescaling is
what makes the upper bound of :mod:`stylesearch.search.topk` sound.

Query arithmetic: ``q = a * n(f_I) + b * sum_{w+} n(f_T(w)) - c * sum_{w-} n(f_T(w))``, then
``q / |q|``; ``n`` is L2 normalisation of the word parts when ``normalize_words`` (default: word
embeddings and image embeddings have unrelated norms, so unnormalised word vectors would let one
part drown the other). The image part is always the unit ``f_I`` the index stores.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ArithmeticConfig",
    "attribute_score",
    "attribute_score_upper_bound",
    "compose_query",
    "may_reach",
    "needed_factor",
    "product_of_factors",
    "rescale_cosine",
    "soft_filter_score",
    "unwanted_factor",
    "unwanted_factor_bound",
    "with_look",
]

#: relative slack on the exact top-k's upper bounds: a bound must be below the k-th score by
#: more than float32 rounding (cosines computed by two code paths, products of factors) can move it
BOUND_EPS = 1e-5
#: absolute slack added to every bound (on top of the relative :data:`BOUND_EPS`)
BOUND_ABS_EPS = BOUND_EPS * 1e-2


@dataclass(frozen=True)
class ArithmeticConfig:
    """Weights and normalisation of query arithmetic (PAPER.md method 1, "ours, configurable")."""

    #: weight ``a`` of the unit image vector
    image_weight: float = 1.0
    #: weight ``b`` of each wanted word's vector
    add_weight: float = 1.0
    #: weight ``c`` of each unwanted word's vector
    remove_weight: float = 1.0
    #: L2-normalise each word vector before weighting
    normalize_words: bool = True

    @classmethod
    def with_word_weight(cls, word_weight: float | None) -> ArithmeticConfig:
        """Wanted and unwanted word weights ``b = c = word_weight`` (``None``: the defaults),
        the one knob the demo tunes and ``--word-weight`` sets."""
        if word_weight is None:
            return cls()
        if not word_weight >= 0:
            raise ValueError(f"the word weight must be >= 0, got {word_weight}")
        return cls(add_weight=word_weight, remove_weight=word_weight)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def compose_query(
    image: np.ndarray | None,
    add: np.ndarray,
    remove: np.ndarray,
    config: ArithmeticConfig | None = None,
) -> np.ndarray:
    """``q = a n(f_I) + b sum n(f_T(w+)) - c sum n(f_T(w-))``, L2-normalised.

    Args:
        image: ``(D,)`` image vector (normalised here), or ``None`` (the ``text`` method).
        add: ``(A, D)`` wanted word vectors (A may be 0); ``remove``: ``(R, D)``.
        config: weights and normalisation.

    Returns:
        ``(D,)`` float32 unit vector.

    Raises:
        ValueError: the parts cancel out (``|q| == 0``), e.g. no image and no words.
    """
    cfg = config or ArithmeticConfig()
    parts = [np.asarray(x, dtype=np.float32) for x in (add, remove)]
    image_vec = None if image is None else np.asarray(image, dtype=np.float32).reshape(-1)
    dims = [image_vec.shape[0]] if image_vec is not None else []
    dims += [x.shape[-1] for x in parts if x.ndim == 2]
    if not dims or len(set(dims)) != 1:
        raise ValueError(f"query parts must share one dimension, got {dims or 'no parts'}")
    dim = dims[0]
    q = np.zeros(dim, dtype=np.float32)
    if image_vec is not None:
        q += cfg.image_weight * _unit_rows(image_vec)
    for words, weight in zip(parts, (cfg.add_weight, -cfg.remove_weight), strict=True):
        if words.size:
            words = words.reshape(-1, dim)
            q += weight * (_unit_rows(words) if cfg.normalize_words else words).sum(axis=0)
    norm = float(np.linalg.norm(q))
    if not np.isfinite(norm) or norm <= 1e-12:
        raise ValueError("the query vector is zero: its parts cancel out (or there are none)")
    return (q / norm).astype(np.float32)


def with_look(
    query: np.ndarray, look: np.ndarray | None, weight: float, look_dim: int
) -> np.ndarray:
    """The query in the space of an index with a look: ``n([(1 - a) n(q); a n(look)])``.

    ``query``: the joint part ``(D,)`` (the composed query, or the image's ``f_I``); ``look``:
    the query image's look ``(look_dim,)``, ``None`` without an image. Without a look, or with a
    zero one, or with ``a = 0``, the result is ``[n(q); 0]``: the look part of the cosine is 0
    and the joint part ranks alone. Against an item ``n([n(f_I); n(l)])`` the cosine is
    ``((1 - a) cos(q, f_I) + a cos(look, l)) / sqrt(2 ((1 - a)^2 + a^2))``.

    Returns:
        ``(D + look_dim,)`` float32 unit vector.
    """
    q = _unit_rows(np.asarray(query, dtype=np.float32).reshape(-1))
    out = np.zeros(q.shape[0] + look_dim, dtype=np.float32)
    out[: q.shape[0]] = q
    lk = None if look is None else _unit_rows(np.asarray(look, dtype=np.float32).reshape(-1))
    if lk is None or not lk.any() or weight <= 0:
        return out
    if lk.shape[0] != look_dim:
        raise ValueError(f"the look has {lk.shape[0]} dimensions, the index {look_dim}")
    out[: q.shape[0]] *= 1.0 - weight
    out[q.shape[0] :] = weight * lk
    return _unit_rows(out).astype(np.float32)


def rescale_cosine(cos: np.ndarray | float, power: float = 1.0) -> np.ndarray:
    """``((1 + cos) / 2) ** power``, in [0, 1] (float rounding can put a cosine just past +-1).

    ``power`` > 1 sharpens the cosine's share of the soft-filter score (``c~^g * p``): among
    items that are about equally likely to carry the words, the one that looks more like the
    query wins. The map stays increasing in ``cos``, so every cosine bound stays a bound.
    """
    # np.minimum / np.maximum rather than np.clip: the same values, without np.clip's argument
    # handling (this runs several times per soft-filter query; docs/performance.md)
    c = np.minimum(np.maximum((1.0 + np.asarray(cos, dtype=np.float32)) * 0.5, 0.0), 1.0)
    return c if power == 1.0 else (c**power).astype(np.float32)


def unwanted_factor(p: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """An unwanted word's factor of ``p``: ``max(0, 1 - scale p_w)`` in float32 (``1 - p_w``
    when ``scale`` is 1)."""
    p = np.asarray(p, dtype=np.float32)
    if scale == 1.0:
        return np.float32(1.0) - p
    return np.maximum(np.float32(1.0) - p * np.float32(scale), np.float32(0.0))


def unwanted_factor_bound(p_min: Any, scale: float = 1.0) -> np.ndarray:
    """An upper bound of an unwanted word's factor from a lower bound ``p_min`` of ``p_w``:
    ``max(0, 1 - scale p_min)`` in float64 (the factor is decreasing in ``p_w``)."""
    return np.maximum(1.0 - scale * np.asarray(p_min, dtype=np.float64), 0.0)


def product_of_factors(
    n: int, add: Iterable[Any], remove: Iterable[Any], removal_scale: float = 1.0
) -> np.ndarray:
    """``p`` of ``n`` items from one ``(n,)`` column of ``p_w`` per word: the wanted words'
    columns, then the unwanted words' factors (:func:`unwanted_factor`), multiplied into a
    running float32 product in that order (the oracle's arithmetic, so ``p`` is bit-identical
    to :mod:`stylesearch.testing.oracle`'s). ``add`` / ``remove`` may be lazy: one column is
    held at a time."""
    p = np.ones(n, dtype=np.float32)
    for col in add:
        p *= np.asarray(col, dtype=np.float32)
    for col in remove:
        p *= unwanted_factor(col, removal_scale)
    return p


def attribute_score(
    p_add: np.ndarray, p_remove: np.ndarray, removal_scale: float = 1.0
) -> np.ndarray:
    """Soft-filter attribute score ``prod p_w(w+) * prod max(0, 1 - r p_w(w-))`` per item.

    Args:
        p_add: ``(n, A)`` probabilities of the wanted words (A may be 0).
        p_remove: ``(n, R)`` probabilities of the unwanted words.
        removal_scale: ``r`` (:func:`removal_scale`).

    Returns:
        ``(n,)`` float32 in [0, 1]; 1 when there are no words (:func:`product_of_factors`).
    """
    p_add, p_remove = np.asarray(p_add), np.asarray(p_remove)
    return product_of_factors(p_add.shape[0], p_add.T, p_remove.T, removal_scale)


def soft_filter_score(cos: np.ndarray, p: np.ndarray, power: float = 1.0) -> np.ndarray:
    """``rescale_cosine(cos, power) * p``: the score of the ``filter`` and ``combined`` methods."""
    return (rescale_cosine(cos, power) * np.asarray(p, dtype=np.float32)).astype(np.float32)


def attribute_score_upper_bound(
    add_max: np.ndarray, remove_min: np.ndarray, removal_scale: float = 1.0
) -> float:
    """An upper bound of ``p`` over the catalog from per-word column maxima / minima of p.

    ``p = prod p_w(w+) prod max(0, 1 - r p_w(w-)) <= prod max_r p_w * prod max(0, 1 - r min_r
    p_w)``: each factor is monotone in its ``p_w``.
    """
    add_max = np.asarray(add_max, dtype=np.float64)
    return float(np.prod(add_max) * np.prod(unwanted_factor_bound(remove_min, removal_scale)))


def may_reach(bound: Any, s_k: Any, scale: Any = 1.0) -> Any:
    """Whether the score upper bound ``bound * scale`` may reach ``s_k`` once the rounding
    slack is added (element-wise for arrays). ``scale`` is applied with the slack first, as
    ``bound * (scale * (1 + BOUND_EPS))``: a ``p`` times a cosine bound is ``may_reach(p, s_k,
    ub)``. Plain arithmetic, so that :mod:`stylesearch.search.kernels` compiles this same
    definition for its per-row test."""
    return bound * (scale * (1.0 + BOUND_EPS)) + BOUND_ABS_EPS >= s_k


def needed_factor(s_k: float, rest: float) -> float:
    """The smallest factor ``x`` for which ``x * rest`` may reach ``s_k`` (:func:`may_reach`);
    infinite when ``rest`` is 0. Compiled as well by :mod:`stylesearch.search.kernels`."""
    denom = rest * (1.0 + BOUND_EPS)
    return (s_k - BOUND_ABS_EPS) / denom if denom > 0 else np.inf
