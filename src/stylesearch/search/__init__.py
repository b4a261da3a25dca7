"""stylesearch.search: queries, the query syntax, scoring and the :class:`Searcher`.

``search`` depends on ``index`` and ``model``; neither depends on it.
"""

from stylesearch.index.store import IndexMismatchError
from stylesearch.search.query import (
    METHODS,
    ItemRows,
    ParsedQuery,
    Query,
    QueryError,
    QuerySyntaxError,
    SearchError,
    UnknownItemError,
    parse_query,
)
from stylesearch.search.response import Result, SearchResponse
from stylesearch.search.scoring import (
    ArithmeticConfig,
    attribute_score,
    compose_query,
    rescale_cosine,
    soft_filter_score,
)
from stylesearch.search.searcher import Searcher
from stylesearch.search.topk import (
    TopK,
    TopKConfig,
    hard_filter_mask,
    soft_filter_topk,
)
from stylesearch.search.words import UnknownWordError

__all__ = [
    "METHODS",
    "ArithmeticConfig",
    "TopKConfig",
    "IndexMismatchError",
    "ItemRows",
    "ParsedQuery",
    "Query",
    "QueryError",
    "QuerySyntaxError",
    "Result",
    "SearchError",
    "SearchResponse",
    "Searcher",
    "TopK",
    "UnknownItemError",
    "UnknownWordError",
    "attribute_score",
    "compose_query",
    "hard_filter_mask",
    "parse_query",
    "rescale_cosine",
    "soft_filter_score",
    "soft_filter_topk",
]
