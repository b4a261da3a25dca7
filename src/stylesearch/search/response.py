"""What a search returns: a :class:`SearchResponse` of ranked :class:`Result` items, as the
:class:`~stylesearch.search.searcher.Searcher` builds it and ``search --json`` prints it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Result", "SearchResponse"]


@dataclass(frozen=True)
class Result:
    """One ranked item."""

    id: str
    score: float
    cosine: float
    attribute_score: float
    title: str
    row: int = field(default=-1, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "cosine": self.cosine,
            "attribute_score": self.attribute_score,
            "title": self.title,
        }


@dataclass
class SearchResponse:
    """The answer to one :class:`Query`.

    ``query`` is the query as understood (words normalised to vocabulary tokens; ``add`` and
    ``remove`` only the words used to rank); ``ignored_words``: the wanted and unwanted words
    left out because they are not visual; ``message`` explains an empty or short result and any
    ignored word (``None`` otherwise); ``timings`` (ms: ``encode``,
    ``search``) and ``stats`` (how the top-k was found) are for diagnostics.
    """

    method: str
    query: dict[str, Any]
    took_ms: float
    results: list[Result]
    message: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    ignored_words: list[str] = field(default_factory=list)
    #: word -> the synonym group (word first) a metadata filter on it used
    synonyms: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``search --json`` object of ARCHITECTURE.md (plus ``message``, ``ignored_words``
        and ``synonyms``)."""
        return {
            "method": self.method,
            "query": self.query,
            "took_ms": round(self.took_ms, 3),
            "results": [r.to_dict() for r in self.results],
            "message": self.message,
            "ignored_words": list(self.ignored_words),
            "synonyms": {w: list(g) for w, g in self.synonyms.items()},
        }
