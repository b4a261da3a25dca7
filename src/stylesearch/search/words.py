"""A query's words as the :class:`~stylesearch.search.searcher.Searcher` ranks by them.

:func:`query_words` takes a :class:`~stylesearch.search.query.Query`'s words (its lists and its
``text``) to vocabulary ids, refuses a word both wanted and unwanted (or required and excluded),
moves ``filter-hard``'s words to the metadata filters and sets apart every other method's words
that are not visual (:mod:`stylesearch.model.grounding`). A word outside the vocabulary raises
:class:`UnknownWordError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from stylesearch.search.query import ParsedQuery, Query, QueryError, SearchError, parse_query

if TYPE_CHECKING:
    from stylesearch.text.vocabulary import Vocabulary

__all__ = ["QueryWords", "UnknownWordError", "query_words"]


class UnknownWordError(SearchError):
    """A query word the model's vocabulary does not contain (the message lists close words)."""

    def __init__(self, word: str, closest: list[str], vocab_size: int) -> None:
        self.word = word
        self.closest = closest
        hint = f"; closest: {', '.join(closest)}" if closest else "; no close vocabulary word"
        super().__init__(
            f"unknown word {word!r} (not in the model's {vocab_size}-word vocabulary){hint}"
        )


@dataclass(frozen=True)
class QueryWords:
    """A query's words as vocabulary ids (:func:`query_words`)."""

    add: list[int]
    remove: list[int]
    must: list[int]
    must_not: list[int]
    #: wanted or unwanted words left out as not visual
    ignored: list[int] = field(default_factory=list)


def query_words(
    query: Query,
    ids: Callable[[Iterable[str]], list[int]],
    vocab: Vocabulary | None,
    visual: np.ndarray,
    ignored_note: Callable[[list[int]], str],
) -> QueryWords:
    """The query's words as vocabulary ids: conflicts checked, ``filter-hard``'s words moved
    to the metadata filters, and every other method's non-visual words set apart.

    ``ids``: user words -> their vocabulary ids, deduplicated (:class:`UnknownWordError` for a
    word outside it); ``visual``: ``(V,)`` bool, the words used to rank; ``ignored_note``: the
    message for words left out.
    """
    parsed = parse_query(query.text) if query.text else ParsedQuery()
    add = ids([*query.add, *parsed.add])
    remove = ids([*query.remove, *parsed.remove])
    must = ids(query.must)
    must_not = ids(query.must_not)
    assert vocab is not None
    for a, b, what in (
        (add, remove, "wanted and unwanted"),
        (must, must_not, "must and must-not"),
        (add, must_not, "wanted and must-not"),
        (remove, must, "unwanted and must"),
    ):
        both = set(a) & set(b)
        if both:
            raise QueryError(f"{', '.join(vocab.decode(sorted(both)))}: both {what}")
    if query.method == "filter-hard":  # metadata text: every word counts
        must = list(dict.fromkeys([*must, *add]))
        must_not = list(dict.fromkeys([*must_not, *remove]))
        return QueryWords(add, remove, must, must_not)
    ignored = [i for i in (*add, *remove) if not visual[i]]
    words = QueryWords(
        [i for i in add if visual[i]], [i for i in remove if visual[i]], must, must_not, ignored
    )
    if query.method == "text" and not words.add and not words.remove:
        raise QueryError(
            "method 'text' needs at least one word"
            + (f"; {ignored_note(ignored)}" if ignored else "")
        )
    return words
