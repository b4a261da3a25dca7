"""Synonym groups learned from the model: words a catalog uses for the same visual thing.

Two words are *synonyms* ("red", "scarlet", "crimson") when

1. the image side sees the same thing in them: the model's **logits** of the two words (its
   ``p``: the look head's, or the attribute head's)
   agree across the catalog's images (their Pearson correlation over the images is at least
   ``min_correlation``). "red" and "scarlet" fire on the same red images; "red" and "blue"
   on different ones; "red" and "dress" independently;
2. the text uses one *instead of* the other: given the images, they co-occur in an item's
   text no more often than ``max_cooccurrence`` times what the image predicts. The
   **co-occurrence ratio** of words ``a``, ``b`` is::

       observed / expected = sum_i y_ia y_ib / sum_i p_ia p_ib

   with ``y_iw`` whether item ``i``'s text has ``w`` and ``p_iw`` the head's probability of
   ``w`` for its image (what the text would do if the two words were said independently given
   the picture). A synonym replaces the other word (ratio below 1: a title says "scarlet" or
   "red"); two words of one phrase ("adjustable strap", "zip closure") come together (ratio
   well above 1); two separate descriptions of one look ("bag" and "strap") come
   independently (about 1). Correlation alone cannot tell these apart, as the head sees the
   same bag in all of them.

Only words the model can see are candidates: visual words of the model's grounding
(:mod:`stylesearch.model.grounding`), and words too rare to have a grounding score (too few
held-out items), which may join a group that holds a visual word: a rare "azure" is then
judged by its group ("blue"), and counts as visual through it
(:func:`stylesearch.model.grounding.visual_mask`). A word whose held-out score falls below the
threshold (a noisy estimate from a few dozen items: "spotted", "flowered") may join a group
too, but stays in it only beside a word scoring at least ``STRONG_ANCHOR``; it then counts as
visual through the group as well. A model without grounding scores gets no groups.

Words are grouped by **complete linkage**: two groups merge when *every* pair across them
passes both tests, best (highest least correlation) first. Unlike joining every passing pair
(single linkage), a chain of near pairs ("orange" ~ "pumpkin" ~ "mustard" ~ "yellow") cannot
pull two different things into one group. A group's **head** is its most frequent word
(ties: alphabetical); the others follow by frequency.

The groups are saved beside the model as ``synonyms.json`` (:mod:`stylesearch.model.io`),
with the method and its parameters. The thresholds are measured on the demo models
(docs/results.md "Synonyms learned from the model").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stylesearch.folders import check_format_version

__all__ = [
    "DEFAULT_MAX_COOCCURRENCE",
    "DEFAULT_MIN_CORRELATION",
    "METHOD",
    "STRONG_ANCHOR",
    "VERSION",
    "Synonyms",
    "DEFAULT_BINS",
    "calibrate",
    "cooccurrence_ratio",
    "group_words",
    "logit_correlation",
    "pair_scores",
]

METHOD = "head-logit-correlation+cooccurrence"
VERSION = 1
#: least correlation of two synonyms' head logits over the images (measured, docs/results.md)
DEFAULT_MIN_CORRELATION = 0.8
#: most co-occurrence of two synonyms, as a share of what their images predict (measured)
DEFAULT_MAX_COOCCURRENCE = 0.95
#: the least grounding of a word beside which a word scoring below the visual threshold stays
#: in a synonym group (measured on the demo models: docs/results.md)
STRONG_ANCHOR = 0.8
#: parts of each word's items the head's probabilities are calibrated on (:func:`calibrate`)
DEFAULT_BINS = 30
_EPS = 1e-6


def logit_correlation(probs: np.ndarray) -> np.ndarray:
    """``(V, V)`` Pearson correlation over the images of the head's logits ``log(p / (1 - p))``.

    Args:
        probs: ``(N, V)`` attribute probabilities of N images.

    A word whose logit does not vary over the images correlates 0 with every word (1 with
    itself).
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0 - _EPS)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, V), got {p.shape}")
    z = np.log(p) - np.log1p(-p)
    z -= z.mean(axis=0)
    norm = np.linalg.norm(z, axis=0)
    unit = np.divide(z, norm, out=np.zeros_like(z), where=norm > 1e-9)
    corr = unit.T @ unit
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def calibrate(probs: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """``(N, V)`` calibrated probabilities: each word's items sorted by the head's probability,
    cut into ``bins`` equal parts, and each item given its part's share of items whose text has
    the word (histogram binning). The head is trained with a per-word weight against the
    frequency imbalance, so its raw probabilities overstate rare words."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels).astype(np.float64)
    if p.shape != y.shape or p.ndim != 2:
        raise ValueError(f"probs {p.shape} and labels {y.shape} must be one (N, V) shape")
    out = np.zeros_like(p)
    order = np.argsort(p, axis=0, kind="stable")
    for part in np.array_split(np.arange(p.shape[0]), max(1, min(bins, p.shape[0]))):
        rows = order[part]  # (len(part), V): the items of this part, per word
        out[rows, np.arange(p.shape[1])] = np.take_along_axis(y, rows, axis=0).mean(axis=0)
    return out


def cooccurrence_ratio(
    probs: np.ndarray, labels: np.ndarray, bins: int | None = DEFAULT_BINS
) -> np.ndarray:
    """``(V, V)`` observed / expected co-occurrence of two words in an item's text:
    ``sum_i y_ia y_ib / sum_i q_ia q_ib`` with ``q`` the head's probabilities calibrated by
    :func:`calibrate` (``bins=None``: taken as they are); ``inf`` where the images predict no
    co-occurrence but the text has some, 0 where the text has none.

    Args:
        probs: ``(N, V)`` attribute probabilities of the items' images.
        labels: ``(N, V)`` bool, the words of each item's text.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels).astype(np.float64)
    if p.shape != y.shape or p.ndim != 2:
        raise ValueError(f"probs {p.shape} and labels {y.shape} must be one (N, V) shape")
    q = p if bins is None else calibrate(p, y, bins)
    observed = y.T @ y
    expected = q.T @ q
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, observed / np.maximum(expected, 1e-300), np.inf)
    ratio[observed == 0] = 0.0
    return ratio


def group_words(
    correlation: np.ndarray,
    cooccurrence: np.ndarray,
    candidates: np.ndarray,
    *,
    min_correlation: float = DEFAULT_MIN_CORRELATION,
    max_cooccurrence: float = DEFAULT_MAX_COOCCURRENCE,
    anchors: np.ndarray | None = None,
    weak: np.ndarray | None = None,
    strong: np.ndarray | None = None,
) -> list[list[int]]:
    """Complete-linkage groups of the ``candidates`` words (module docstring).

    Args:
        correlation: ``(V, V)`` similarity of the words (:func:`logit_correlation`).
        cooccurrence: ``(V, V)`` co-occurrence ratio (:func:`cooccurrence_ratio`).
        candidates: ``(V,)`` bool, the words that may join a group.
        min_correlation: least correlation of every pair in a group.
        max_cooccurrence: most co-occurrence ratio of every pair in a group.
        anchors: ``(V,)`` bool or ``None``; when given, only the groups holding one of these
            words are kept.
        weak, strong: ``(V,)`` bool or ``None``; the ``weak`` words leave every group that
            holds no ``strong`` word (before the ``anchors`` test).

    Returns:
        The groups of two words or more, as sorted word ids, ordered by their first id.
    """
    corr = np.asarray(correlation, dtype=np.float64)
    ratio = np.asarray(cooccurrence, dtype=np.float64)
    ids = np.flatnonzero(np.asarray(candidates, dtype=bool))
    ratio = np.maximum(ratio, ratio.T)
    ok = (corr >= min_correlation) & (ratio <= max_cooccurrence)
    # a pair's linkage: its correlation when it passes both tests, else -inf (never merged)
    link = np.where(ok, np.minimum(corr, corr.T), -np.inf)[np.ix_(ids, ids)]
    groups: list[list[int]] = [[int(i)] for i in ids]
    between = link.copy()  # complete linkage of group a and group b (indices into groups)
    np.fill_diagonal(between, -np.inf)
    alive = np.ones(len(groups), dtype=bool)
    while len(groups) > 1:
        masked = np.where(alive[:, None] & alive[None, :], between, -np.inf)
        a, b = np.unravel_index(int(np.argmax(masked)), masked.shape)
        if not np.isfinite(masked[a, b]):
            break
        a, b = min(a, b), max(a, b)
        groups[a] = groups[a] + groups[b]
        alive[b] = False
        merged = np.minimum(between[a], between[b])
        between[a, :] = merged
        between[:, a] = merged
        between[a, a] = -np.inf
    anchored = None if anchors is None else np.asarray(anchors, dtype=bool)
    weakened = None if weak is None else np.asarray(weak, dtype=bool)
    backed = np.zeros(len(corr), dtype=bool) if strong is None else np.asarray(strong, dtype=bool)
    kept = []
    for g, live in zip(groups, alive, strict=True):
        if live and weakened is not None and not backed[g].any():
            g = [i for i in g if not weakened[i]]
        if live and len(g) > 1 and (anchored is None or anchored[g].any()):
            kept.append(sorted(g))
    return sorted(kept, key=lambda g: g[0])


@dataclass
class Synonyms:
    """A model's synonym groups and how they were learned.

    Attributes:
        groups: each group's words, its head (most frequent word) first, then by frequency.
        items: number of items whose images and text the groups were learned from.
        source: where those items came from.
        min_correlation / max_cooccurrence: the thresholds used (:func:`group_words`).
        grounding_threshold: least grounding of a candidate word (``None``: every word was one).
        rare_words: whether words too rare to have a grounding score were candidates too, each
            group then holding at least one word that reaches ``grounding_threshold``.
        strong_anchor: the least grounding of a word beside which a word scoring below
            ``grounding_threshold`` stays in a group (``None``: such words were no candidates).
        method: :data:`METHOD`.
    """

    groups: list[list[str]]
    items: int = 0
    source: str = ""
    min_correlation: float = DEFAULT_MIN_CORRELATION
    max_cooccurrence: float = DEFAULT_MAX_COOCCURRENCE
    grounding_threshold: float | None = None
    rare_words: bool = False
    strong_anchor: float | None = None
    method: str = METHOD
    extra: dict[str, Any] = field(default_factory=dict)
    _by_word: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for group in self.groups:
            for word in group:
                if word in self._by_word:
                    raise ValueError(f"synonyms: {word!r} is in two groups")
                self._by_word[word] = group

    @classmethod
    def learn(
        cls,
        words: Sequence[str],
        counts: Sequence[int],
        probs: np.ndarray,
        labels: np.ndarray,
        candidates: np.ndarray,
        *,
        min_correlation: float = DEFAULT_MIN_CORRELATION,
        max_cooccurrence: float = DEFAULT_MAX_COOCCURRENCE,
        grounding_threshold: float | None = None,
        anchors: np.ndarray | None = None,
        weak: np.ndarray | None = None,
        strong: np.ndarray | None = None,
        strong_anchor: float | None = None,
        source: str = "",
    ) -> Synonyms:
        """Group ``words`` (the model's order) from the model's ``probs`` ``(N, V)`` on N items'
        images and the items' text ``labels`` ``(N, V)``; ``candidates`` ``(V,)`` says which
        words may join a group, ``anchors`` (``(V,)`` or ``None``) which words a group must
        hold one of, and ``weak`` words stay only in a group with a ``strong`` one
        (:func:`group_words`); ``strong_anchor`` is recorded as the grounding that made a word
        strong."""
        ids = group_words(
            logit_correlation(probs),
            cooccurrence_ratio(probs, labels),
            candidates,
            min_correlation=min_correlation,
            max_cooccurrence=max_cooccurrence,
            anchors=anchors,
            weak=weak,
            strong=strong,
        )
        groups = [
            [words[i] for i in sorted(g, key=lambda i: (-int(counts[i]), words[i]))] for g in ids
        ]
        return cls(
            groups=sorted(groups, key=lambda g: g[0]),
            items=int(np.asarray(labels).shape[0]),
            source=source,
            min_correlation=float(min_correlation),
            max_cooccurrence=float(max_cooccurrence),
            grounding_threshold=grounding_threshold,
            rare_words=anchors is not None,
            strong_anchor=strong_anchor,
        )

    def group(self, word: str) -> list[str]:
        """``word``'s group, head first; ``[word]`` for a word without synonyms."""
        return list(self._by_word.get(word, [word]))

    def others(self, word: str) -> list[str]:
        """The other words of ``word``'s group (``[]`` without synonyms)."""
        return [w for w in self.group(word) if w != word]

    def to_dict(self) -> dict[str, Any]:
        """The ``synonyms.json`` body (the model folder's stamps are added on save)."""
        return {
            "format_version": VERSION,
            "method": self.method,
            "min_correlation": self.min_correlation,
            "max_cooccurrence": self.max_cooccurrence,
            "grounding_threshold": self.grounding_threshold,
            "rare_words": self.rare_words,
            "strong_anchor": self.strong_anchor,
            "items": self.items,
            "source": self.source,
            "groups": [list(g) for g in self.groups],
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Synonyms:
        """Read a ``synonyms.json`` body; ``ValueError`` when it is not one."""
        if not isinstance(data, Mapping) or not isinstance(data.get("groups"), list):
            raise ValueError("not a synonyms file (no groups)")
        check_format_version(data, VERSION, "synonyms")
        groups = data["groups"]
        if not all(isinstance(g, list) and all(isinstance(w, str) for w in g) for g in groups):
            raise ValueError("synonyms: groups must be lists of words")
        threshold, strong = data.get("grounding_threshold"), data.get("strong_anchor")
        known = {
            "format_version",
            "method",
            "min_correlation",
            "max_cooccurrence",
            "grounding_threshold",
            "rare_words",
            "strong_anchor",
            "items",
            "source",
            "groups",
        }
        return cls(
            groups=[list(g) for g in groups],
            items=int(data.get("items", 0)),
            source=str(data.get("source", "")),
            min_correlation=float(data.get("min_correlation", DEFAULT_MIN_CORRELATION)),
            max_cooccurrence=float(data.get("max_cooccurrence", DEFAULT_MAX_COOCCURRENCE)),
            grounding_threshold=None if threshold is None else float(threshold),
            rare_words=bool(data.get("rare_words", False)),
            strong_anchor=None if strong is None else float(strong),
            method=str(data.get("method", METHOD)),
            extra={k: v for k, v in data.items() if k not in known},
        )


def pair_scores(
    groups: Sequence[Sequence[str]], truth: Sequence[Sequence[str]], words: Sequence[str]
) -> dict[str, float | int]:
    """Pairwise precision and recall of learned ``groups`` against ``truth`` groups, over the
    pairs of ``words`` (e.g. the model's vocabulary).

    A pair of two different words is *true* when one truth group holds both, *found* when one
    learned group does. precision = true found pairs / found pairs (1.0 with none found),
    recall = true found pairs / true pairs (1.0 with none true).
    """
    vocab = set(words)

    def pairs(gs: Sequence[Sequence[str]]) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for g in gs:
            kept = sorted({w for w in g if w in vocab})
            out.update((a, b) for i, a in enumerate(kept) for b in kept[i + 1 :])
        return out

    found, true = pairs(groups), pairs(truth)
    hits = len(found & true)
    return {
        "precision": hits / len(found) if found else 1.0,
        "recall": hits / len(true) if true else 1.0,
        "found_pairs": len(found),
        "true_pairs": len(true),
        "true_found": hits,
    }
