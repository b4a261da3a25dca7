"""Which of the demo model's words are called visual, by the demo generator's kind of word.

Reads ``stylesearch vocab --json`` (words with their grounding) and sorts the words into the kinds
the demo catalog's generator (``stylesearch.catalog.demo_text``) knows: colour, pattern and
category words (canonical values, and all with their synonyms), brand names, materials, and
filler (every other word: fits, seasons, sizes, care and marketing phrases, template words).
Prints, per kind and per threshold, the share marked visual or not visual as it should be (by
the engine's rule: a word below the threshold or too rare to score counts as visual when a
synonym of it reaches the threshold; ``--by-score-only`` leaves such words out):

    PYTHONPATH=src .venv/bin/python -m stylesearch vocab --model runs/demo/model --json \\
        > /tmp/vocab.json
    .venv/bin/python benchmarks/grounding_groups.py /tmp/vocab.json --model runs/demo/model

Materials are reported apart: in the demo catalog they depend on the category (leather and
suede for footwear and bags), so an image does predict them somewhat.
"""

from __future__ import annotations

import json
from pathlib import Path

import _common
from stylesearch.catalog import demo_text
from stylesearch.model.grounding import VISUAL_THRESHOLD
from stylesearch.model.io import read_model_config
from stylesearch.text.pipeline import TextPipeline


def kinds(pipeline: TextPipeline, words: set[str]) -> dict[str, set[str]]:
    """Kind -> the vocabulary words of that kind."""

    def tokens(names: list[str]) -> set[str]:
        found = (pipeline.normalize_query_word(n) for n in names)
        return {t for t in found if t in words}

    groups = demo_text.VOCABULARY.values()
    canonical = tokens([value for group in groups for value in group])
    named = [n for group in groups for value, syn in group.items() for n in (value, *syn)]
    visual = tokens(named + [demo_text.PLURALS.get(n, n) for n in named])
    brands = tokens([b.lower() for b in demo_text.BRANDS])
    materials = tokens(sorted({m for ms in demo_text._MATERIALS.values() for m in ms}))
    filler = words - visual - brands - materials
    return {
        "colour/pattern/category (canonical)": canonical,
        "colour/pattern/category (with synonyms)": visual,
        "brand": brands,
        "filler": filler,
        "brand + filler": brands | filler,
        "material": materials,
    }


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("vocab_json", type=Path, help="`stylesearch vocab --json` output")
    parser.add_argument("--model", type=Path, required=True, help="the model folder")
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[0.5, 0.6, 0.7, VISUAL_THRESHOLD, 0.8, 0.9]
    )
    parser.add_argument("--list", action="store_true", help="also list each kind's words")
    parser.add_argument(
        "--by-score-only",
        action="store_true",
        help="a word is visual by its own score only, not through its synonyms",
    )
    args = parser.parse_args()
    rows = json.loads(args.vocab_json.read_text())
    score = {r["word"]: r["grounding"] for r in rows}
    synonyms = {r["word"]: set(r.get("synonyms", [])) for r in rows}

    def visual(word: str, t: float) -> bool:
        """The engine's rule (``model.grounding.visual_mask``): a score of at least ``t``, or
        a synonym with one; without ``--by-score-only``."""
        if score[word] is not None and score[word] >= t:
            return True
        return not args.by_score_only and any(
            score[o] is not None and score[o] >= t for o in synonyms[word]
        )

    from stylesearch.config import TextConfig, from_dict

    text = from_dict(TextConfig, read_model_config(args.model)["text"], where="text")
    by_kind = kinds(TextPipeline(text), set(score))
    print("| kind | words | " + " | ".join(f"t = {t:g}" for t in args.thresholds) + " |")
    print("|---|---:|" + "---:|" * len(args.thresholds))
    for kind, words in by_kind.items():
        want_visual = kind.startswith("colour")
        cells = []
        for t in args.thresholds:
            right = sum(visual(w, t) == want_visual for w in words)
            cells.append(f"{right / max(1, len(words)):.0%}")
        goal = "visual" if want_visual else "not visual"
        print(f"| {kind}, {goal} | {len(words)} | " + " | ".join(cells) + " |")
    if args.list:
        for kind, words in by_kind.items():
            ordered = sorted(words, key=lambda w: -(score[w] if score[w] is not None else -9))
            shown = (f"{w} {'-' if score[w] is None else f'{score[w]:.2f}'}" for w in ordered)
            print(f"\n{kind}: " + ", ".join(shown))


if __name__ == "__main__":
    main()
