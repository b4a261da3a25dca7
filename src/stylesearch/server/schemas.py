"""Request and response models of the HTTP API (they document the OpenAPI schema at ``/docs``).

Every answer is validated by its response model before it is sent (:class:`ResponseModel`): a
field the code sends but the model does not declare, a missing one, a value of another type or
a number that is not finite is a bug, answered 500 (``internal_error``) and logged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from stylesearch.catalog.manifest import MAX_ID_CHARS
from stylesearch.config import FUSION_RULES
from stylesearch.search.query import (
    DEFAULT_METHOD,
    MAX_FEEDBACK_ITEMS,
    MAX_QUERY_CHARS,
    MAX_QUERY_WORDS,
    METHODS,
)

__all__ = [
    "Attribute",
    "ErrorBody",
    "Facet",
    "FieldError",
    "HealthResponse",
    "ItemDetail",
    "ItemSummary",
    "ItemsResponse",
    "MethodInfo",
    "ResponseModel",
    "SearchRequest",
    "SearchResponseBody",
    "SearchResult",
    "SettingsInfo",
    "UnderstoodQuery",
    "VocabularyResponse",
    "VocabularyWord",
    "error_body",
]

Method = Literal[METHODS]  # type: ignore[valid-type]
MAX_WORD_CHARS = 64
Words = list[str]
ItemIds = list[Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]]


class SearchRequest(BaseModel):
    """A search: a query image (an upload, multipart only) or a catalog ``item_id``, words, method.

    Words may be given as lists (``add``, ``remove``), in the one-line syntax (``query``:
    ``"+red -striped"``), or both. ``must`` / ``must_not`` are hard metadata filters.
    """

    model_config = ConfigDict(extra="forbid")

    item_id: str | None = Field(
        None, min_length=1, max_length=MAX_ID_CHARS, description="use this item as the query image"
    )
    add: Words = Field(default_factory=list, max_length=MAX_QUERY_WORDS, description="wanted words")
    remove: Words = Field(
        default_factory=list, max_length=MAX_QUERY_WORDS, description="unwanted words"
    )
    query: str | None = Field(
        None, max_length=MAX_QUERY_CHARS, description='words in the one-line syntax "+red -striped"'
    )
    method: Method = Field(DEFAULT_METHOD, description="the search method (docs/search.md)")
    k: StrictInt = Field(
        10, ge=1, description="number of results, a JSON integer (at most the server's max_k, 100)"
    )
    must: Words = Field(
        default_factory=list, max_length=MAX_QUERY_WORDS, description="hard filter: metadata has"
    )
    must_not: Words = Field(
        default_factory=list, max_length=MAX_QUERY_WORDS, description="hard filter: metadata lacks"
    )
    word_weight: float | None = Field(
        None, ge=0, le=100, allow_inf_nan=False,
        description="this query's word weight of query arithmetic (default: the index's settings,"
        " GET /api/health)",
    )  # fmt: skip
    cosine_power: float | None = Field(
        None, gt=0, le=1000, allow_inf_nan=False,
        description="this query's cosine power of the soft filter (default: the index's settings)",
    )  # fmt: skip
    look_weight: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False,
        description="this query's share of the look (the colour-blind shape vector) in its query "
        "vector, on an index whose model has one (default: the index's settings)",
    )  # fmt: skip
    synonyms: bool | None = Field(
        None,
        description="let a metadata filter word (filter-hard, must, must_not) cover its synonym "
        "group learned with the model (default: the server's setting, --no-synonyms)",
    )
    like: ItemIds = Field(
        default_factory=list, max_length=MAX_FEEDBACK_ITEMS,
        description="ids of catalog items to move the query towards: q + alpha mean(like)",
    )  # fmt: skip
    unlike: ItemIds = Field(
        default_factory=list, max_length=MAX_FEEDBACK_ITEMS,
        description="ids of catalog items to move the query away from (- beta mean(unlike)); "
        "they are left out of the results",
    )  # fmt: skip
    like_weight: float | None = Field(
        None, ge=0, le=4, allow_inf_nan=False, description="alpha (default 0.5)"
    )
    unlike_weight: float | None = Field(
        None, ge=0, le=4, allow_inf_nan=False, description="beta (default 0.75)"
    )


class ResponseModel(BaseModel):
    """A response body exactly as sent: every field declared (an undeclared one is an error),
    each value of its declared type (strict: nothing is coerced, a float is not an int) and
    every number finite."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Attribute(ResponseModel):
    word: str
    p: float = Field(description="predicted probability of the attribute word")


class SearchResult(ResponseModel):
    id: str
    score: float
    cosine: float
    attribute_score: float
    title: str
    image_url: str
    attributes: list[Attribute] = Field(
        description="the item's most probable visual attributes (words an image can show)"
    )


class Facet(ResponseModel):
    word: str
    count: int = Field(
        description="how many results have p(word) >= 0.5 (or p of one of its synonyms)"
    )
    synonyms: list[str] = Field(
        description="the word's learned synonyms, merged into this facet (may be empty)"
    )
    label: str = Field(description='e.g. "red (also: scarlet, crimson)"; the word alone')


class UnderstoodQuery(ResponseModel):
    """The query as the searcher understood it: words as vocabulary tokens, and the settings it
    used (each only where its method uses it; absent otherwise)."""

    image: str | None = Field(
        description='"<upload, N bytes>" for an uploaded image; null without one'
    )
    item_id: str | None
    add: list[str] = Field(description="the wanted words used to rank (vocabulary tokens)")
    remove: list[str] = Field(description="the unwanted words used to rank")
    must: list[str]
    must_not: list[str]
    method: Method
    k: int
    like: list[str]
    unlike: list[str]
    word_weight: float | None = Field(
        None, description="the word weight of query arithmetic (arithmetic and combined only)"
    )
    cosine_power: float | None = Field(
        None, description="the soft filter's cosine power (filter and combined only)"
    )
    look_weight: float | None = Field(
        None, description="the look's share of the query vector (a model with a look; not text)"
    )


class SearchResponseBody(ResponseModel):
    method: Method
    query: UnderstoodQuery = Field(description="the query as understood (vocabulary tokens)")
    took_ms: float
    results: list[SearchResult]
    message: str | None = Field(
        description="why the result is empty or short, and which words were ignored"
    )
    ignored_words: list[str] = Field(
        description="wanted or unwanted words left out of the ranking because they are not "
        "visual (grounding below the server's threshold; never with filter-hard)"
    )
    synonyms: dict[str, list[str]] = Field(
        description="each metadata filter word expanded to its learned synonym group: the "
        "group used (the word first)",
    )
    facets: list[Facet]


class ItemSummary(ResponseModel):
    id: str
    title: str
    image_url: str


class ItemDetail(ItemSummary):
    attributes: list[Attribute]
    metadata: list[str] = Field(description="the item's metadata words (vocabulary tokens)")


class ItemsResponse(ResponseModel):
    items: list[ItemSummary]


class VocabularyWord(ResponseModel):
    word: str
    count: int = Field(description="number of catalog items whose text has the word")
    grounding: float | None = Field(
        description="how well an image predicts the word: 2 * AUC - 1 of the attribute head on "
        "held-out items (null: too few held-out items with the word, or a model folder without "
        "grounding.json)"
    )
    visual: bool = Field(
        description="grounding reaches the server's visual threshold (true for every word of a "
        "model folder without grounding.json); only visual words are suggested, shown as "
        "facets and used to rank"
    )
    synonyms: list[str] = Field(
        description="the word's learned synonyms (synonyms.json; empty when the server's "
        "synonyms are off)",
    )


class VocabularyResponse(ResponseModel):
    prefix: str
    total: int = Field(description="number of matching words (before the limit)")
    words: list[VocabularyWord]


class MethodInfo(ResponseModel):
    name: Method
    label: str = Field(description="what the method uses, in a few words")


class TextFusionInfo(ResponseModel):
    """How the index fused its items' text into their attribute probabilities (docs/search.md
    "Build an index")."""

    rule: Literal[FUSION_RULES]  # type: ignore[valid-type]
    weight: float


class SettingsInfo(ResponseModel):
    """The search settings in force (docs/search.md "Search settings")."""

    word_weight: dict[str, float] = Field(description="word weight of each arithmetic method")
    cosine_power: float
    look_weight: float
    source: Literal["tuned", "default", "given"]
    tuned_on: str | None = Field(description="the queries they were tuned on (source tuned)")


class HealthResponse(ResponseModel):
    status: Literal["ok"]
    version: str
    items: int
    vocabulary: int
    dimension: int
    look_dim: int = Field(description="dimension of the look in the index's vectors (0: none)")
    look_kind: str | None = Field(
        description=(
            'how the look reads an image: "pixel-shading", "shading", "silhouette" or '
            '"luminance" (null: no look)'
        )
    )
    backend: str | None
    model_fingerprint: str
    text_fusion: TextFusionInfo = Field(
        description="how the index fused its items' text into p: log-odds or blend, and weight"
    )
    settings: SettingsInfo = Field(
        description="the search settings in force: word_weight per method, cosine_power, "
        "look_weight, and source (tuned, default or given)"
    )
    grounding_threshold: float | None = Field(
        description="least visual grounding of a word used to rank, suggested or shown as a "
        "facet (null: every word is used)"
    )
    visual_words: int = Field(
        description="vocabulary words at or above it (all of them for a model folder without "
        "grounding.json)"
    )
    methods: list[MethodInfo] = Field(description="the search methods, in the page's order")
    default_method: Method


class FieldError(ResponseModel):
    field: str = Field(description='the field, dotted ("add.0"); empty for the whole body')
    message: str


class ErrorBody(ResponseModel):
    """Every 4xx (and the rare 500) answer; the optional fields only where they apply."""

    error: str = Field(description="a stable code: bad_request, unknown_word, unknown_item, ...")
    detail: str = Field(description="a message a user can act on")
    word: str | None = Field(None, description="unknown_word: the word")
    closest: list[str] | None = Field(None, description="unknown_word: the closest known words")
    errors: list[FieldError] | None = Field(None, description="bad_request: field errors")


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The JSON of an error answer, validated by :class:`ErrorBody` (only the fields given)."""
    body = ErrorBody.model_validate({"error": code, "detail": detail, **extra})
    return body.model_dump(mode="json", exclude_unset=True)
