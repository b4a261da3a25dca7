"""What distinct unknown query words cost the text pipeline (issue 15, defect 7): time and memory.

A client can send a new made-up word with every search; each one is tagged by spaCy in the
carrier phrases (under the server's search lock) and its forms are cached. This feeds
``--words`` distinct pseudo-words ("blorvex", ...; seeded, none in the vocabulary) through
``TextPipeline.normalize_query_word`` as the searcher does, then reads the process's RSS
(``/proc/self/status``), the cache sizes and spaCy's string store, in ``--steps`` steps.
Finally it times a word still in the cache (a hit) and the first word again (forgotten by then
when more words than the cache holds were sent).

    .venv/bin/python benchmarks/query_cache.py
    .venv/bin/python benchmarks/query_cache.py --words 10000 --backend simplemma

Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time

import _common
from stylesearch.config import TextConfig
from stylesearch.text import pipeline as text_pipeline
from stylesearch.text.pipeline import TextPipeline

ONSETS = ["b", "bl", "br", "d", "dr", "f", "fl", "g", "gr", "k", "kl", "m", "n", "p", "pl",
          "qu", "r", "s", "sk", "sn", "t", "tr", "v", "z", "zh"]  # fmt: skip
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ee"]
CODAS = ["", "b", "d", "g", "k", "l", "m", "n", "p", "r", "sh", "st", "x", "z"]
#: a vocabulary like a fashion catalog's: none of the pseudo-words is in it
VOCABULARY = frozenset(
    ["red", "blue", "green", "black", "white", "yellow", "striped", "floral", "dotted", "checked",
     "dress", "shirt", "skirt", "jeans", "shorts", "sleeve", "cotton", "silk", "wool", "leather",
     "denim", "pocket", "collar", "long", "short", "slim", "loose"]
)  # fmt: skip


def pseudo_words(n: int, seed: int) -> list[str]:
    """``n`` distinct lowercase pseudo-words of two or three syllables, none in VOCABULARY."""
    rng = random.Random(seed)
    words: dict[str, None] = {}
    while len(words) < n:
        syllables = rng.choice((2, 3))
        word = "".join(
            rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables)
        )
        if word not in VOCABULARY:
            words[word] = None
    return list(words)


def spacy_sizes(pipeline: TextPipeline) -> tuple[int, int]:
    """(strings in spaCy's string store, entries of its lemmatizer's cache)."""
    if pipeline.config.backend != "spacy":
        return 0, 0
    nlp = pipeline._get_nlp()
    return len(nlp.vocab.strings), len(getattr(nlp.get_pipe("lemmatizer"), "cache", ()))


def main(argv: list[str] | None = None) -> int:
    parser = _common.parser(__doc__)
    parser.add_argument("--words", type=int, default=10_000, help="distinct unknown words")
    parser.add_argument("--steps", type=int, default=5, help="report this many times")
    parser.add_argument("--backend", choices=("spacy", "simplemma"), default="spacy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--query-cache-size",
        type=int,
        default=text_pipeline.QUERY_CACHE_SIZE,
        help="entries of the query-word cache (a huge value: as if unbounded)",
    )
    args = parser.parse_args(argv)
    text_pipeline.QUERY_CACHE_SIZE = args.query_cache_size  # read when a pipeline is made

    pipeline = TextPipeline(TextConfig(backend=args.backend)).load()
    for word in ("red", "dresses", "striped", "shorts", "zzzwarmup"):
        pipeline.normalize_query_word(word, vocabulary=VOCABULARY)
    words = pseudo_words(args.words, args.seed)
    gc.collect()
    base = _common.rss_mb()
    print(f"backend {pipeline.name}; {args.words} distinct unknown words; RSS {base:.1f} MB")
    print(f"{'words':>7} {'ms/word p50':>11} {'p90':>6} {'max':>6} {'RSS MB':>8} {'+MB':>7} "
          f"{'query cache':>11} {'noun lemmas':>11} {'spaCy strings':>13} "
          f"{'lemmatizer cache':>16}")  # fmt: skip
    step = max(1, len(words) // max(1, args.steps))
    times: list[float] = []
    started = time.perf_counter()
    for i, word in enumerate(words, 1):
        t0 = time.perf_counter()
        pipeline.normalize_query_word(word, vocabulary=VOCABULARY)
        times.append((time.perf_counter() - t0) * 1000)
        if i % step == 0 or i == len(words):
            recent = sorted(times[-step:])
            gc.collect()
            rss = _common.rss_mb()
            strings, lemmas = spacy_sizes(pipeline)
            print(
                f"{i:>7} {statistics.median(recent):>11.2f} {recent[int(0.9 * len(recent))]:>6.2f}"
                f" {recent[-1]:>6.1f} {rss:>8.1f} {rss - base:>+7.1f} "
                f"{len(pipeline._query_cache):>11} {len(pipeline._noun_lemma_cache):>11} "
                f"{strings:>13} {lemmas:>16}"
            )
    total = time.perf_counter() - started
    print(f"total {total:.1f} s, {1000 * total / len(words):.2f} ms per word on average")
    t0 = time.perf_counter()
    pipeline.normalize_query_word(words[-1], vocabulary=VOCABULARY)
    hit = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    pipeline.normalize_query_word(words[0], vocabulary=VOCABULARY)
    first = (time.perf_counter() - t0) * 1000
    print(f"the last word again (cached): {hit:.3f} ms; the first word again: {first:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
