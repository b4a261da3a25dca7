"""Vocabulary and noisy product metadata of the demo catalog.

Each attribute group maps a canonical value (what ``truth.jsonl`` holds) to the synonyms noisy
metadata may use instead. Every word is one lower-case token, and every canonical value is the
token ``stylesearch.text`` makes of it in catalog text and as a query word: ``striped``,
``dotted``, ``checked`` keep their participle form, plurals become singular (``sneakers`` ->
``sneaker``) except plural-only garments (``trousers`` stays ``trousers``).

Metadata is generated like a real, noisy catalog: varied title templates and case styles,
synonyms, plural category words, words that are not visual (brands, materials, sizes, care and
marketing phrases), plus two kinds of noise per item, drawn with fixed rates: a *missing*
attribute (its word is left out of all the item's text) or a *wrong* attribute (another value of
the same group is written instead). Solid items also leave their pattern unsaid half of the time,
as real catalogs do (not counted as noise). Every other attribute is said at least once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: the attribute groups, in the order truth.jsonl and the datasheet list them.
GROUPS: tuple[str, ...] = ("category", "colour", "pattern")

#: Fashion-MNIST label -> canonical category word (index = label).
CATEGORIES: dict[str, list[str]] = {
    "tshirt": ["tee", "top"],
    "trousers": ["pants", "chinos"],
    "pullover": ["sweater", "jumper"],
    "dress": ["gown", "frock"],
    "coat": ["jacket", "parka"],
    "sandal": ["slide", "mule"],
    "shirt": ["blouse", "overshirt"],
    "sneaker": ["trainer", "runner"],
    "bag": ["handbag", "tote"],
    "boot": ["bootie", "chukka"],
}

COLOURS: dict[str, list[str]] = {
    "red": ["crimson", "scarlet", "ruby"],
    "orange": ["tangerine", "pumpkin"],
    "yellow": ["mustard", "lemon"],
    "green": ["emerald", "lime"],
    "blue": ["cobalt", "azure"],
    "purple": ["violet", "plum"],
    "pink": ["rose", "fuchsia"],
    "brown": ["chocolate", "mocha"],
    "black": ["onyx", "ebony"],
    "white": ["ivory", "snow"],
    "grey": ["gray", "charcoal", "slate"],
    "beige": ["sand", "khaki"],
}

PATTERNS: dict[str, list[str]] = {
    "solid": ["plain", "monochrome"],
    "striped": ["stripy", "pinstriped"],
    "dotted": ["spotted", "spotty"],
    "checked": ["plaid", "gingham", "checkered"],
    "floral": ["flowery", "flowered"],
    "zigzag": ["chevron", "wavy"],
}

VOCABULARY: dict[str, dict[str, list[str]]] = {
    "category": CATEGORIES,
    "colour": COLOURS,
    "pattern": PATTERNS,
}

#: plural forms used for category words (words missing here have no plural).
PLURALS: dict[str, str] = {
    "tshirt": "tshirts", "tee": "tees", "top": "tops",
    "trousers": "trousers", "pants": "pants", "chinos": "chinos",
    "pullover": "pullovers", "sweater": "sweaters", "jumper": "jumpers",
    "dress": "dresses", "gown": "gowns", "frock": "frocks",
    "coat": "coats", "jacket": "jackets", "parka": "parkas",
    "sandal": "sandals", "slide": "slides", "mule": "mules",
    "shirt": "shirts", "blouse": "blouses", "overshirt": "overshirts",
    "sneaker": "sneakers", "trainer": "trainers", "runner": "runners",
    "bag": "bags", "handbag": "handbags", "tote": "totes",
    "boot": "boots", "bootie": "booties", "chukka": "chukkas",
}  # fmt: skip

#: how often a category word is written in the plural (pairs of shoes, trousers: mostly).
_PLURAL_RATE = {"sandal": 0.7, "sneaker": 0.7, "boot": 0.7}
_DEFAULT_PLURAL_RATE = 0.08

BRANDS = (
    "Nordwind", "Lumora", "Kestrel", "Velmont", "Arbor", "Tidewell", "Marlowe", "Fenwick",
    "Solvane", "Castellan", "Juniper", "Oskarson", "Halden", "Corvo", "Ilsted", "Brevik",
)  # fmt: skip
_FOOTWEAR = {"sandal", "sneaker", "boot"}
_MATERIALS = {
    "clothes": ("cotton", "linen", "wool", "denim", "polyester", "viscose", "cashmere", "jersey"),
    "footwear": ("leather", "suede", "canvas", "mesh", "rubber"),
    "bag": ("leather", "canvas", "nylon", "suede"),
}
_SIZES = {
    "clothes": ("XS", "S", "M", "L", "XL", "34", "36", "38", "40", "42"),
    "footwear": tuple(str(n) for n in range(36, 46)),
    "bag": ("one size",),
}
_FITS = ("regular", "slim", "relaxed", "oversized", "classic", "cropped")
_SEASONS = ("spring", "summer", "autumn", "winter", "holiday")
_CARE = {
    "clothes": ("Machine washable.", "Hand wash only.", "Dry clean only.", "Wash at 30 degrees.",
                "Do not tumble dry."),
    "footwear": ("Wipe with a damp cloth.", "Air dry away from heat.", "Removable insole."),
    "bag": ("Wipe with a damp cloth.", "Adjustable strap.", "Zip closure."),
}  # fmt: skip
_MARKETING = (
    "New season.", "Bestseller.", "Limited edition.", "Free delivery on orders over 50 euros.",
    "Sustainably made.", "Online exclusive.", "Customer favourite.", "Back in stock.",
    "Part of our {season} collection.", "A wardrobe essential.", "Designed in Copenhagen.",
)  # fmt: skip

#: title templates: segments joined by spaces; a segment naming an unsaid attribute is dropped.
_TITLES: tuple[tuple[str, ...], ...] = (
    ("{brand}", "{colour}", "{pattern}", "{category}"),
    ("{colour}", "{pattern}", "{material}", "{category}", "by {brand}"),
    ("{brand}", "{pattern}", "{category}", "in {colour}"),
    ("{brand}", "{fit}", "{colour}", "{pattern}", "{category},", "size {size}"),
    ("{pattern}", "{colour}", "{category}", "| {brand}"),
    ("{brand}", "{material}", "{category}", "- {colour}"),
    ("{brand}", "{colour}", "{category}"),
)
_ATTRIBUTE_SENTENCES: tuple[str, ...] = (
    "A {colour} {category} for every day.",
    "This {pattern} {category} goes with everything.",
    "Features a {pattern} design.",
    "Colour: {colour}.",
    "Pattern: {pattern}.",
    "Our {colour} {pattern} {category} in soft {material}.",
)

#: the sentence that says an attribute the title template leaves out.
_SAY = {"category": "A {category} for every day.", "colour": "Colour: {colour}.",
        "pattern": "Pattern: {pattern}."}  # fmt: skip


def _segment(template: str, words: dict[str, str | None]) -> str | None:
    names = [k for k in words if "{" + k + "}" in template]
    if any(words[k] is None for k in names):
        return None
    return template.format(**{k: words[k] for k in names})


def _join(segments: list[str | None]) -> str:
    text = " ".join(s for s in segments if s)
    return text.replace(" ,", ",").strip(" ,-|")


def _word(group: str, value: str, rng: np.random.Generator, synonym_rate: float) -> str:
    synonyms = VOCABULARY[group][value]
    word = value
    if synonyms and rng.random() < synonym_rate:
        word = synonyms[int(rng.integers(len(synonyms)))]
    if group == "category" and rng.random() < _PLURAL_RATE.get(value, _DEFAULT_PLURAL_RATE):
        word = PLURALS.get(word, word)
    return word


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def make_metadata(
    truth: dict[str, str],
    rng: np.random.Generator,
    *,
    missing_rate: float,
    wrong_rate: float,
    synonym_rate: float,
    solid_said_rate: float = 0.5,
) -> dict[str, Any]:
    """Title, description and structured attributes for an item with clean values ``truth``.

    Returns ``{"title", "description", "attributes", "noise"}``; ``noise`` is ``None`` or
    ``{"kind": "missing", "group": g}`` or ``{"kind": "wrong", "group": g, "value": v}``.
    """
    stated, noise = _stated_values(truth, rng, missing_rate, wrong_rate, solid_said_rate)

    kind = (
        "footwear" if truth["category"] in _FOOTWEAR
        else "bag" if truth["category"] == "bag" else "clothes"
    )  # fmt: skip

    def words() -> dict[str, str | None]:
        said = {g: v for g, v in stated.items() if v is not None}
        return {
            "brand": _pick(BRANDS, rng),
            "material": _pick(_MATERIALS[kind], rng),
            "size": _pick(_SIZES[kind], rng),
            "fit": _pick(_FITS, rng) if kind == "clothes" else None,
            "season": _pick(_SEASONS, rng),
            **{g: _word(g, said[g], rng, synonym_rate) if g in said else None for g in GROUPS},
        }

    title_words = words()
    template = _TITLES[int(rng.integers(len(_TITLES)))]
    title = _join([_segment(s, title_words) for s in template])
    style = rng.random()
    if style < 0.5:
        title = title.title() if str(title_words["brand"]) in title else _sentence_case(title)
    elif style < 0.9:
        title = _sentence_case(title)

    # the description names the same product: only the attribute words are drawn again
    desc_words = {**title_words, **{g: words()[g] for g in GROUPS}}
    description = _description(template, stated, desc_words, kind, rng)

    attributes = [title_words["material"] or "", title_words["season"] or ""]
    if title_words["fit"]:
        attributes.append(f"{title_words['fit']} fit")
    return {
        "title": title,
        "description": description,
        "attributes": [a for a in attributes if a],
        "noise": noise,
    }


def _stated_values(
    truth: dict[str, str],
    rng: np.random.Generator,
    missing_rate: float,
    wrong_rate: float,
    solid_said_rate: float,
) -> tuple[dict[str, str | None], dict[str, str] | None]:
    """The value the metadata states for each group (``None``: left out) and the noise drawn:
    one group missing or wrong at the given rates; a solid pattern often goes unsaid."""
    stated: dict[str, str | None] = {g: truth[g] for g in GROUPS}
    noise: dict[str, str] | None = None
    u = rng.random()
    if u < missing_rate + wrong_rate:
        group = GROUPS[int(rng.integers(len(GROUPS)))]
        if u < missing_rate:
            stated[group] = None
            noise = {"kind": "missing", "group": group}
        else:
            others = [v for v in VOCABULARY[group] if v != truth[group]]
            wrong = others[int(rng.integers(len(others)))]
            stated[group] = wrong
            noise = {"kind": "wrong", "group": group, "value": wrong}
    wrong_pattern = noise is not None and noise["group"] == "pattern"
    if stated["pattern"] == "solid" and not wrong_pattern and rng.random() >= solid_said_rate:
        stated["pattern"] = None
    return stated, noise


def _description(
    template: tuple[str, ...],
    stated: dict[str, str | None],
    desc_words: dict[str, str | None],
    kind: str,
    rng: np.random.Generator,
) -> str:
    """The description: every stated attribute the title leaves out, a few more attribute
    sentences, material or care, marketing and (for clothes) fit, in a random order."""
    sentences: list[str] = []
    for g in GROUPS:
        if stated[g] is not None and not any("{" + g + "}" in seg for seg in template):
            # the title template leaves this attribute out: the description says it
            sentences.append(_SAY[g])
    n_attr = int(rng.integers(0, 3))
    extra = [s for s in _ATTRIBUTE_SENTENCES if s not in sentences]
    for i in rng.permutation(len(extra))[:n_attr]:
        sentences.append(extra[int(i)])
    sentences.append("Made from {material}." if rng.random() < 0.6 else _pick(_CARE[kind], rng))
    sentences.append(_pick(_MARKETING, rng))
    if kind == "clothes" and rng.random() < 0.5:
        sentences.append("{fit} fit, model wears size {size}.")
    order = rng.permutation(len(sentences))
    rendered = [_segment(sentences[int(i)], desc_words) for i in order]
    return " ".join(_sentence_case(s) for s in rendered if s)
