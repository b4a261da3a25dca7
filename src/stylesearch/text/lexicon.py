"""The fixed English word lists both text backends share (:mod:`stylesearch.text.pipeline`):
stop words, plural-only garment nouns, and the pattern nouns mapped to their participles
("stripes" -> "striped", "polka dots" -> "dotted"; the pipeline's "Pattern nouns and
participles")."""

from __future__ import annotations

__all__ = [
    "PATTERN_PARTICIPLES",
    "PLURALIA_TANTUM",
    "PLURAL_ONLY_PATTERNS",
    "STOP_WORDS",
    "guess_singular",
    "pattern_participle",
]

#: English stop words dropped by both backends: function words, pronouns, auxiliaries, number
#: words and vague adverbs: spaCy 3.8's English list without its contractions and one-letter "i"
#: (too short anyway) and minus the garment words "top", "bottom", "front", "back", "side", "full".
_STOP_WORDS_TEXT = """
    a about above across after afterwards again against all almost alone along already also
    although always am among amongst amount an and another any anyhow anyone anything anyway
    anywhere are around as at be became because become becomes becoming been before beforehand
    behind being below beside besides between beyond both but by ca call can cannot could did do
    does doing done down due during each eight either eleven else elsewhere empty enough even ever
    every everyone everything everywhere except few fifteen fifty first five for former formerly
    forty four from further get give go had has have he hence her here hereafter hereby herein
    hereupon hers herself him himself his how however hundred if in indeed into is it its itself
    just keep last latter latterly least less made make many may me meanwhile might mine more
    moreover most mostly move much must my myself name namely neither never nevertheless next nine
    no nobody none noone nor not nothing now nowhere of off often on once one only onto or other
    others otherwise our ours ourselves out over own part per perhaps please put quite rather re
    really regarding same say see seem seemed seeming seems serious several she should show since
    six sixty so some somehow someone something sometime sometimes somewhere still such take ten
    than that the their them themselves then thence there thereafter thereby therefore therein
    thereupon these they third this those though three through throughout thru thus to together
    too toward towards twelve twenty two under unless until up upon us used using various very via
    was we well were what whatever when whence whenever where whereafter whereas whereby wherein
    whereupon wherever whether which while whither who whoever whole whom whose why will with
    within without would yet you your yours yourself yourselves
"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS_TEXT.split())

#: Nouns used only in the plural, kept as written by both backends ("shorts" is not "short").
_PLURALIA_TANTUM_TEXT = """
    jeans shorts trousers pants leggings tights jeggings chinos overalls dungarees pyjamas
    pajamas briefs boxers knickers panties glasses sunglasses
"""
PLURALIA_TANTUM: frozenset[str] = frozenset(_PLURALIA_TANTUM_TEXT.split())

#: Pattern nouns (lemmas) -> the participle that names the same pattern (the docstring of
#: :mod:`stylesearch.text.pipeline`).
PATTERN_PARTICIPLES: dict[str, str] = {
    "stripe": "striped",
    "pinstripe": "pinstriped",
    "dot": "dotted",
    "check": "checked",
    "checker": "checkered",
    "flower": "flowered",
    "spot": "spotted",
}
#: nouns of :data:`PATTERN_PARTICIPLES` mapped only when written in the plural
PLURAL_ONLY_PATTERNS: frozenset[str] = frozenset({"spot"})


def pattern_participle(lemma: str, *, plural: bool) -> str:
    """``lemma``'s pattern participle (:data:`PATTERN_PARTICIPLES`), else ``lemma`` itself;
    ``plural``: the word was written in another form than its lemma (:data:`PLURAL_ONLY_PATTERNS`
    map only then)."""
    if lemma not in PATTERN_PARTICIPLES:
        return lemma
    if lemma in PLURAL_ONLY_PATTERNS and not plural:
        return lemma
    return PATTERN_PARTICIPLES[lemma]


def guess_singular(word: str) -> str:
    """Singular of a word no lexicon knows, by the suffix rules spaCy applies to unknown nouns."""
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith(("ches", "shes", "xes", "zes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word
