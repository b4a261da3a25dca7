"""Visual grounding per word: how well the image side (the attribute head) predicts each word.

A word's grounding is the *Gini coefficient* of the attribute head on held-out items::

    grounding = 2 * AUC - 1

where ``AUC`` is the area under the ROC curve of the head's probability for the word, ranking
the held-out items' images against the word's presence in their metadata (ties count one
half): the chance that an item whose metadata has the word ranks above one whose metadata does
not. It is 0 for a head that ranks no better than chance, 1 for a perfect one, negative for a
worse one, and it does not depend on how frequent the word is.

Why not the AP lift ``(AP - base) / (1 - base)`` (``base``: the word's share of the items, the
AP of a ranking by chance), which is saved beside it as ``ap_lift``: AP rewards telling the
word's items apart at the very top of the ranking. A synonym ("crimson") names a random part of
the items of its colour, and no image can rank those above the other red items, so its AP lift
stays low although the word is plainly visual, while its Gini is high. On the demo model the
Gini separates colour, pattern and category words from brand and filler words far better
(docs/results.md "Visual grounding per word").

Words with fewer than ``min_positives`` held-out positives (or no negative) get ``None``: a
handful of positives gives a score too noisy to rank a word by.

A word is *visual* when its grounding is at least the threshold (:data:`VISUAL_THRESHOLD`,
measured on the demo model). A word without a score is not called visual when the model has
grounding scores (nothing shows that an image predicts it); every word is visual for a model
folder without them (as before grounding existed).

The scores are saved beside the model as ``grounding.json`` (:mod:`stylesearch.model.io`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from stylesearch.folders import check_format_version
from stylesearch.retrieval_metrics import average_precision

if TYPE_CHECKING:
    from stylesearch.model.synonyms import Synonyms

__all__ = [
    "DEFAULT_MIN_POSITIVES",
    "gini",
    "METHOD",
    "VERSION",
    "VISUAL_THRESHOLD",
    "Grounding",
    "ap_lift",
    "check_threshold",
    "grounding_scores",
    "not_visual_note",
    "visual_mask",
]

METHOD = "auc-gini"
VERSION = 1
#: fewest held-out items whose metadata has a word for the word to get a score
DEFAULT_MIN_POSITIVES = 5
#: least grounding of a visual word (measured on the demo model, docs/results.md)
VISUAL_THRESHOLD = 0.75


def _scorable(labels: np.ndarray, min_positives: int) -> bool:
    positives = int(labels.sum())
    return positives >= max(1, min_positives) and positives < labels.size


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of ``scores`` (ascending), tied scores sharing their mean rank."""
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
    ends = np.r_[starts[1:], ordered.size]
    ranks = np.empty(ordered.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def gini(scores: np.ndarray, labels: np.ndarray, min_positives: int = 1) -> float | None:
    """``2 * AUC - 1`` of one word (ties count one half), or ``None`` with fewer than
    ``min_positives`` positives or no negative."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in shape")
    if not _scorable(labels, min_positives):
        return None
    positives = int(labels.sum())
    negatives = labels.size - positives
    rank_sum = float(_average_ranks(scores)[labels].sum())
    auc = (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)
    return 2.0 * auc - 1.0


def ap_lift(scores: np.ndarray, labels: np.ndarray, min_positives: int = 1) -> float | None:
    """``(AP - base) / (1 - base)`` of one word, or ``None`` with fewer than ``min_positives``
    positives or no negative."""
    labels = np.asarray(labels).astype(bool).ravel()
    if not _scorable(labels, min_positives):
        return None
    base = int(labels.sum()) / labels.size
    return float((average_precision(scores, labels) - base) / (1.0 - base))


def grounding_scores(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    min_positives: int = DEFAULT_MIN_POSITIVES,
    score: Callable[[np.ndarray, np.ndarray, int], float | None] = gini,
) -> list[float | None]:
    """``score`` (:func:`gini`, or :func:`ap_lift`) of every column.

    Args:
        probs: (N, V) attribute probabilities of N held-out images.
        labels: (N, V) bool, the words of each item's metadata.
        min_positives: fewest positives for a score.
    """
    probs = np.asarray(probs)
    labels = np.asarray(labels).astype(bool)
    if probs.shape != labels.shape or probs.ndim != 2:
        raise ValueError(f"probs {probs.shape} and labels {labels.shape} must be one (N, V) shape")
    return [score(probs[:, j], labels[:, j], min_positives) for j in range(probs.shape[1])]


@dataclass
class Grounding:
    """Grounding scores of a model's words and how they were measured.

    Attributes:
        scores: word -> grounding (``None``: too few held-out positives).
        ap_lift: word -> AP lift, kept for comparison (not used to call a word visual).
        items: number of held-out items the scores were computed on.
        source: where those items came from (e.g. the training catalog's held-out split).
        min_positives: the fewest positives a scored word had.
        method: :data:`METHOD`.
    """

    scores: dict[str, float | None]
    items: int
    ap_lift: dict[str, float | None] = field(default_factory=dict)
    source: str = ""
    min_positives: int = DEFAULT_MIN_POSITIVES
    method: str = METHOD
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_arrays(
        cls,
        words: Sequence[str],
        probs: np.ndarray,
        labels: np.ndarray,
        *,
        source: str = "",
        min_positives: int = DEFAULT_MIN_POSITIVES,
    ) -> Grounding:
        """Score ``words`` (the attribute head's order) on ``probs`` against ``labels``."""
        values = grounding_scores(probs, labels, min_positives=min_positives)
        lifts = grounding_scores(probs, labels, min_positives=min_positives, score=ap_lift)
        return cls(
            scores=dict(zip(words, values, strict=True)),
            ap_lift=dict(zip(words, lifts, strict=True)),
            items=int(np.asarray(labels).shape[0]),
            source=source,
            min_positives=min_positives,
        )

    def score(self, word: str) -> float | None:
        return self.scores.get(word)

    def visual(self, word: str, threshold: float = VISUAL_THRESHOLD) -> bool:
        """Whether ``word`` scores at least ``threshold`` (no score: not visual)."""
        value = self.scores.get(word)
        return value is not None and value >= threshold

    def to_dict(self) -> dict[str, Any]:
        """The ``grounding.json`` body (the model folder's stamps are added on save)."""
        return {
            "format_version": VERSION,
            "method": self.method,
            "items": self.items,
            "source": self.source,
            "min_positives": self.min_positives,
            "scores": {w: _round(v) for w, v in self.scores.items()},
            "ap_lift": {w: _round(v) for w, v in self.ap_lift.items()},
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Grounding:
        """Read a ``grounding.json`` body; ``ValueError`` when it is not one."""
        if not isinstance(data, Mapping) or not isinstance(data.get("scores"), Mapping):
            raise ValueError("not a grounding file (no scores)")
        check_format_version(data, VERSION, "grounding")
        known = {
            "format_version",
            "method",
            "items",
            "source",
            "min_positives",
            "scores",
            "ap_lift",
        }
        return cls(
            scores=_numbers(data["scores"], "grounding"),
            ap_lift=_numbers(data.get("ap_lift") or {}, "AP lift"),
            items=int(data.get("items", 0)),
            source=str(data.get("source", "")),
            min_positives=int(data.get("min_positives", DEFAULT_MIN_POSITIVES)),
            method=str(data.get("method", METHOD)),
            extra={k: v for k, v in data.items() if k not in known},
        )


def _numbers(values: Mapping[str, Any], what: str) -> dict[str, float | None]:
    if not isinstance(values, Mapping):
        raise ValueError(f"{what}: expected an object of word -> number")
    out: dict[str, float | None] = {}
    for word, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{what} of {word!r} is not a number: {value!r}")
        out[str(word)] = None if value is None else float(value)
    return out


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


def word_grounding(
    grounding: Grounding | None, word: str, threshold: float = VISUAL_THRESHOLD
) -> tuple[float | None, bool]:
    """``(grounding, visual)`` of ``word``: ``(None, True)`` for a model without grounding
    scores (every word counts as visual, as before they existed)."""
    if grounding is None:
        return None, True
    return _round(grounding.score(word)), grounding.visual(word, threshold)


def check_threshold(value: float | None) -> float | None:
    """``value`` as a visual threshold (a number in [-1, 1], or ``None``); ``ValueError`` else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -1 <= value <= 1:
        raise ValueError(f"the grounding threshold must be a number in [-1, 1], got {value!r}")
    return float(value)


def not_visual_note(grounding: Grounding | None, words: Sequence[str], threshold: float) -> str:
    """What a search says of its query ``words`` that it left out as not visual."""
    parts = []
    for word in words:
        score = None if grounding is None else grounding.score(word)
        why = "too few held-out items to score" if score is None else f"grounding {score:.3f}"
        parts.append(f"{word} ({why})")
    them = "it" if len(words) == 1 else "them"
    return (
        f"not visual, not used to rank: {', '.join(parts)}; an image cannot show {them} "
        f"(the visual threshold is {threshold:g}); a hard metadata filter (must, or method "
        f"filter-hard) on {them} still works"
    )


def visual_mask(
    grounding: Grounding | None,
    words: Sequence[str],
    threshold: float | None = VISUAL_THRESHOLD,
    synonyms: Synonyms | None = None,
) -> np.ndarray:
    """``(V,)`` bool: which of ``words`` are visual: those scoring at least ``threshold``, and
    with the model's ``synonyms``, the others (too rare to score, or scoring below it; see
    :mod:`stylesearch.model.synonyms` for which may join a group) whose synonym group has a
    word that does. All of them for a model without grounding scores (as before they existed)
    or with ``threshold=None`` (the grounding not acted on)."""
    if grounding is None or threshold is None:
        return np.ones(len(words), dtype=bool)
    mask = np.fromiter((grounding.visual(w, threshold) for w in words), bool, count=len(words))
    if synonyms is not None:
        by_score = {w for w, visual in zip(words, mask, strict=True) if visual}
        for i, word in enumerate(words):
            if not mask[i] and by_score.intersection(synonyms.others(word)):
                mask[i] = True
    return mask


def vocabulary_rows(
    words: Sequence[str],
    counts: Sequence[int],
    grounding: Grounding | None,
    threshold: float = VISUAL_THRESHOLD,
    synonyms: Synonyms | None = None,
) -> list[dict[str, Any]]:
    """``[{"word", "count", "grounding", "visual"}]`` of every word (visual as
    :func:`visual_mask` says), best grounded first (words without a score last), then most
    frequent first, then alphabetical."""
    visual = visual_mask(grounding, words, threshold, synonyms)
    rows = []
    for word, count, seen in zip(words, counts, visual, strict=True):
        score, _ = word_grounding(grounding, word, threshold)
        rows.append({"word": word, "count": int(count), "grounding": score, "visual": bool(seen)})
    rows.sort(
        key=lambda r: (r["grounding"] is None, -(r["grounding"] or 0.0), -r["count"], r["word"])
    )
    return rows
