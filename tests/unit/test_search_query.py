"""The one-line query syntax and Query validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stylesearch.search.query import (
    MAX_QUERY_WORDS,
    ParsedQuery,
    Query,
    QueryError,
    QuerySyntaxError,
    parse_query,
)


@pytest.mark.parametrize(
    ("text", "add", "remove"),
    [
        ("+red -striped", ("red",), ("striped",)),
        ("red dress", ("red", "dress"), ()),
        ("  +Red   -STRIPED\tdress ", ("red", "dress"), ("striped",)),
        ("+t-shirt -men's", ("t-shirt",), ("men's",)),
        ("", (), ()),
        ("red +red", ("red",), ()),
        ("-a1", (), ("a1",)),
    ],
)
def test_parse(text, add, remove):
    assert parse_query(text) == ParsedQuery(add, remove)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("+", "must be followed by a word"),
        ("red -", "must be followed by a word"),
        ("++red", "not a word"),
        ("--red", "not a word"),
        ('"red dress"', "not a word"),
        ("red,", "not a word"),
        ("+red -red", "both wanted and unwanted"),
        ("_x", "not a word"),
        (" ".join(f"w{i}" for i in range(MAX_QUERY_WORDS + 1)), "too many words"),
        ("x" * 2000, "too long"),
    ],
)
def test_syntax_errors(text, match):
    with pytest.raises(QuerySyntaxError, match=match):
        parse_query(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parse_is_total(text):
    try:
        parsed = parse_query(text)
    except QuerySyntaxError as exc:
        assert str(exc)
    else:
        assert not set(parsed.add) & set(parsed.remove)
        assert all(w and w == w.lower() for w in (*parsed.add, *parsed.remove))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["+", "-", ""]), st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
        ),
        max_size=10,
    )
)
def test_generated_valid_queries_parse(tokens):
    text = " ".join(sign + word for sign, word in tokens)
    try:
        parsed = parse_query(text)
    except QuerySyntaxError as exc:
        assert "both wanted and unwanted" in str(exc)
        return
    for sign, word in tokens:
        assert word in (parsed.remove if sign == "-" else parsed.add)


def test_query_validation():
    Query(image="x.png").validate()
    Query(method="text", add=["red"]).validate()
    with pytest.raises(QueryError, match="unknown method"):
        Query(image="x.png", method="fuzzy").validate()
    with pytest.raises(QueryError, match="k must be"):
        Query(image="x.png", k=0).validate()
    with pytest.raises(QueryError, match="needs a query image"):
        Query(method="visual").validate()
    with pytest.raises(QueryError, match="not both"):
        Query(image="x.png", item_id="a").validate()
