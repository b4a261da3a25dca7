"""Queries: the :class:`Query` dataclass, the search methods and the one-line query syntax.

Query syntax (shared by the CLI's ``--query`` and, later, the server)::

    "+red -striped dress"   ->  add = (red, dress), remove = (striped,)

* Tokens are separated by whitespace.
* ``+word``: a wanted word; ``-word``: an unwanted word; a bare ``word`` is wanted too (typing
  "red dress" means what it says).
* A word starts with a letter or digit and continues with letters, digits, ``-`` or ``'``
  ("t-shirt", "men's"). Anything else (``+`` alone, ``++red``, ``-"red"``, ``red,``) is a
  :class:`QuerySyntaxError` naming the token; there is no quoting.
* A word both wanted and unwanted is an error; repeats are kept once. At most
  :data:`MAX_QUERY_WORDS` words and :data:`MAX_QUERY_CHARS` characters.

:func:`parse_query` is total: for any string it returns a :class:`ParsedQuery` or raises
:class:`QuerySyntaxError`. Words are only lowercased here; mapping them to vocabulary tokens
("Dresses" -> "dress") is the searcher's job, with the model's text pipeline.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from stylesearch.config import DEFAULT_METHOD, METHOD_LABELS
from stylesearch.errors import StylesearchError

__all__ = [
    "DEFAULT_METHOD",
    "MAX_FEEDBACK_ITEMS",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_WORDS",
    "METHODS",
    "ItemRows",
    "ParsedQuery",
    "Query",
    "QueryError",
    "QuerySyntaxError",
    "SearchError",
    "UnknownItemError",
    "parse_query",
]

#: the search methods, declared in :data:`stylesearch.config.METHOD_LABELS`
METHODS: tuple[str, ...] = tuple(METHOD_LABELS)
MAX_QUERY_WORDS = 32
MAX_QUERY_CHARS = 1000
#: at most this many item ids in each of ``Query.like`` and ``Query.unlike``
MAX_FEEDBACK_ITEMS = 32

_WORD = re.compile(r"[^\W_][\w'-]*")


class SearchError(StylesearchError, ValueError):
    """A query that cannot be answered as given; the message says what to change."""


class QueryError(SearchError):
    """A query with missing or conflicting parts (no image for a visual method, bad k, ...)."""


class QuerySyntaxError(SearchError):
    """A query string that does not follow the query syntax (module docstring)."""


class UnknownItemError(QueryError, LookupError):
    """No live item of the index has this id (a query's ``item_id``, ``like`` or ``unlike``;
    the server answers 404)."""

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id
        super().__init__(f"no item with id {item_id!r} in the index")


@dataclass(frozen=True)
class ParsedQuery:
    """The words of a query string, lowercased, in order of first appearance."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


def parse_query(text: str) -> ParsedQuery:
    """Parse ``"+red -striped dress"``; :class:`QuerySyntaxError` with the reason otherwise."""
    if not isinstance(text, str):
        raise QuerySyntaxError(f"a query must be a string, not {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(
            f"query too long: {len(text)} characters (at most {MAX_QUERY_CHARS})"
        )
    add: dict[str, None] = {}
    remove: dict[str, None] = {}
    for token in text.split():
        sign, word = (token[0], token[1:]) if token[0] in "+-" else ("+", token)
        if not word:
            raise QuerySyntaxError(
                f"{token!r} must be followed by a word, e.g. '{token}red' (no space after it)"
            )
        if not _WORD.fullmatch(word):
            raise QuerySyntaxError(
                f"{token!r} is not a word: use letters and digits (with - or ' inside), "
                'optionally after one + (wanted) or - (unwanted), e.g. "+red -striped dress"'
            )
        word = word.lower()
        (add if sign == "+" else remove).setdefault(word, None)
        if word in add and word in remove:
            raise QuerySyntaxError(f"{word!r} is both wanted and unwanted")
    if len(add) + len(remove) > MAX_QUERY_WORDS:
        raise QuerySyntaxError(f"too many words: at most {MAX_QUERY_WORDS}")
    return ParsedQuery(tuple(add), tuple(remove))


ImageInput = str | os.PathLike[str] | bytes | Image.Image


@dataclass(frozen=True)
class ItemRows:
    """The index rows of a query's items, looked up once
    (:meth:`~stylesearch.search.searcher.Searcher.item_rows`)."""

    #: the row of ``item_id`` (``None`` without one)
    item: int | None = None
    #: the rows of ``like`` and of ``unlike``, each id once, in order
    like: list[int] = field(default_factory=list)
    unlike: list[int] = field(default_factory=list)


@dataclass
class Query:
    """One search request.

    Attributes:
        image: the query image: a file path, the encoded bytes (an upload) or a PIL image;
            ``None`` with ``item_id`` or for the ``text`` method.
        item_id: use this catalog item's stored vector as the query image instead.
        add: wanted words ``w+`` (user spelling; normalised by the searcher).
        remove: unwanted words ``w-``.
        method: one of :data:`METHODS`.
        k: number of results (>= 1).
        must: hard metadata filter: every one of these words in the item's metadata.
        must_not: hard metadata filter: none of these words in the item's metadata.
        text: a one-line query (``"+red -striped"``) whose words are added to ``add`` / ``remove``.
        word_weight: this query's word weight of query arithmetic (``b = c``), instead of the
            searcher's settings.
        cosine_power: this query's ``g`` of the soft filter, instead of the searcher's.
        look_weight: this query's share ``a`` of the look in its query vector, instead of the
            searcher's.
        synonyms: whether a metadata filter word covers its learned synonym group, instead of
            the searcher's setting (``None``).
        like: ids of catalog items to move the query towards ("more like this").
        unlike: ids of catalog items to move it away from ("less like this"); they are left out
            of the results (:mod:`stylesearch.search.feedback`).
        like_weight: ``alpha`` of the move towards ``like`` (default
            :data:`~stylesearch.search.feedback.LIKE_WEIGHT`).
        unlike_weight: ``beta`` of the move away from ``unlike`` (default
            :data:`~stylesearch.search.feedback.UNLIKE_WEIGHT`).
    """

    image: ImageInput | None = None
    item_id: str | None = None
    add: tuple[str, ...] | list[str] = ()
    remove: tuple[str, ...] | list[str] = ()
    method: str = DEFAULT_METHOD
    k: int = 10
    must: tuple[str, ...] | list[str] = ()
    must_not: tuple[str, ...] | list[str] = ()
    text: str | None = field(default=None)
    word_weight: float | None = None
    cosine_power: float | None = None
    look_weight: float | None = None
    synonyms: bool | None = None
    like: tuple[str, ...] | list[str] = ()
    unlike: tuple[str, ...] | list[str] = ()
    like_weight: float | None = None
    unlike_weight: float | None = None

    def validate(self) -> None:
        """:class:`QueryError` for a query no method can answer (checked before any work)."""
        if self.method not in METHODS:
            raise QueryError(f"unknown method {self.method!r}; choose one of: {', '.join(METHODS)}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise QueryError(f"k must be an integer >= 1, got {self.k!r}")
        if self.image is not None and self.item_id is not None:
            raise QueryError("give a query image or an item id, not both")
        if self.method != "text" and self.image is None and self.item_id is None:
            raise QueryError(f"method {self.method!r} needs a query image (or an item id)")
        if len(self.like) > MAX_FEEDBACK_ITEMS or len(self.unlike) > MAX_FEEDBACK_ITEMS:
            raise QueryError(
                f"at most {MAX_FEEDBACK_ITEMS} liked and {MAX_FEEDBACK_ITEMS} unliked items"
            )
        both = sorted(set(self.like) & set(self.unlike))
        if both:
            raise QueryError(f"{', '.join(both)}: both liked and unliked")
        if self.item_id is not None and self.item_id in self.unlike:
            raise QueryError(f"the query item {self.item_id!r} cannot also be unliked")

    def describe_image(self) -> str | None:
        """A JSON-friendly description of the image part (the path, or the kind of input)."""
        if self.image is None:
            return None
        if isinstance(self.image, (str, os.PathLike)):
            return os.fspath(self.image)
        if isinstance(self.image, (bytes, bytearray, memoryview)):
            return f"<{len(self.image)} bytes>"
        return "<PIL image>"

    def as_dict(self) -> dict[str, Any]:
        return {
            "image": self.describe_image(),
            "item_id": self.item_id,
            "add": list(self.add),
            "remove": list(self.remove),
            "must": list(self.must),
            "must_not": list(self.must_not),
            "method": self.method,
            "k": self.k,
            "like": list(dict.fromkeys(self.like)),
            "unlike": list(dict.fromkeys(self.unlike)),
        }
