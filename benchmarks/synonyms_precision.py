"""Pairwise precision and recall of a model's learned synonym groups against the demo catalog's
synonym table (``stylesearch.catalog.demo_text.VOCABULARY``).

The table's words (each canonical value with its synonyms, and their plurals) go through the
model's text pipeline as query words; a *true* pair is two different vocabulary words of one
table entry, a *found* pair two words of one learned group (``synonyms.json``). Reported over
every vocabulary word and over the visual words only (grounding at least the threshold: the
only words that can be grouped)::

    python benchmarks/synonyms_precision.py --model runs/demo/model

With ``--catalog TRAIN_MANIFEST`` it also learns the groups again for a grid of the two
thresholds (``min_correlation`` x ``max_cooccurrence``) from the head's probabilities on every
item of the manifest, as training does, and prints precision and recall of each.
"""

from __future__ import annotations

import _common


def main() -> None:
    import stylesearch
    from stylesearch.catalog.demo_text import PLURALS, VOCABULARY
    from stylesearch.model.grounding import VISUAL_THRESHOLD
    from stylesearch.model.synonyms import pair_scores
    from stylesearch.text.pipeline import TextPipeline

    ap = _common.parser(__doc__)
    ap.add_argument("--model", required=True, help="the model folder (with synonyms.json)")
    ap.add_argument(
        "--threshold", type=float, default=VISUAL_THRESHOLD,
        help=f"grounding that makes a word visual (default: {VISUAL_THRESHOLD})",
    )  # fmt: skip
    ap.add_argument("--catalog", help="sweep the thresholds on this manifest's items")
    args = ap.parse_args()
    model = stylesearch.load_model(args.model)
    if model.synonyms is None or model.grounding is None:
        raise SystemExit(f"{args.model}: no synonyms.json / grounding.json (vocab --write)")
    vocab = model.vocab
    assert vocab is not None
    pipe = TextPipeline(model.text_config)
    truth = []
    for table in VOCABULARY.values():
        for value, synonyms in table.items():
            forms = {
                pipe.normalize_query_word(form, vocabulary=vocab)
                for word in (value, *synonyms)
                for form in (word, PLURALS.get(word, word))
            }
            truth.append(sorted(f for f in forms if f in vocab))
    visual = [w for w in vocab.words if model.grounding.visual(w, args.threshold)]
    print(f"{len(model.synonyms.groups)} groups: {model.synonyms.groups}")
    for name, words in (("every vocabulary word", vocab.words), ("visual words", visual)):
        s = pair_scores(model.synonyms.groups, truth, words)
        print(
            f"{name} ({len(words)}): precision {s['precision']:.3f} "
            f"({s['true_found']}/{s['found_pairs']}), recall {s['recall']:.3f} "
            f"({s['true_found']}/{s['true_pairs']})"
        )
    found = {(a, b) for g in model.synonyms.groups for a in g for b in g if a < b}
    true = {(a, b) for g in truth for a in g for b in g if a < b}
    print("false pairs:", sorted(found - true))
    print("missed pairs among visual words:", sorted(
        (a, b) for a, b in true - found if a in visual and b in visual
    ))  # fmt: skip
    if args.catalog:
        sweep(model, args.catalog, truth, visual, args.threshold)


def sweep(model, catalog: str, truth, visual, threshold: float) -> None:  # noqa: ANN001
    import numpy as np

    from stylesearch.model.grounding import visual_mask
    from stylesearch.model.inference import predict_attributes
    from stylesearch.model.synonyms import Synonyms, pair_scores
    from stylesearch.training.grounding import synonym_items

    found = synonym_items(model, catalog)
    items, bags = found.items, found.bags
    probs = predict_attributes(model, items, num_workers=1)
    labels = np.zeros(probs.shape, dtype=bool)
    for row, bag in enumerate(bags):
        labels[row, list(bag)] = True
    words = model.vocab.words
    candidates = visual_mask(model.grounding, words, threshold)
    print(f"sweep on {len(items)} items: min_correlation, max_cooccurrence -> P / R (visual)")
    for corr in (0.7, 0.75, 0.8, 0.85, 0.9):
        row = []
        for ratio in (0.8, 0.9, 0.95, 1.0, 1.2, float("inf")):
            syn = Synonyms.learn(
                words, model.vocab.counts, probs, labels, candidates,
                min_correlation=corr, max_cooccurrence=ratio,
            )  # fmt: skip
            s = pair_scores(syn.groups, truth, visual)
            row.append(f"{ratio:g}: {s['precision']:.3f} / {s['recall']:.3f}")
        print(f"{corr:g} | " + " | ".join(row))


if __name__ == "__main__":
    main()
