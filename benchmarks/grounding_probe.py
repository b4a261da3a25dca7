"""Each word's grounding from the linear attribute head, against predictors fitted after training.

Grounding (``stylesearch.model.grounding``) is the Gini of the model's ``p`` on the training
run's held-out items. This script compares, on frozen image features of the training catalog's
other items: the linear attribute head; a logistic regression per word (class-balanced, L2
``--weight-decay``) on ``f_I`` (what the head reads), or on ``f_I`` beside the model's
colour-blind look; and the engine's look head (``stylesearch.model.look_head``, which gives the
model's ``p`` when fitted), refitted here on ``f_I`` beside the look's whole 32 x 32 grid. Every
row scores the same held-out items and prints, by the demo generator's kind of word
(``grounding_groups.py``), how many of the scored colour, pattern and category words reach
``--threshold`` and how many brand and filler words stay below it, with the words that miss. (A
word too rare to score is left out here; the engine judges it by its synonym group.)

    .venv/bin/python benchmarks/grounding_probe.py --model runs/demo/model \\
        --catalog runs/demo/catalog/train/manifest.jsonl
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import _common
from grounding_groups import kinds
from stylesearch.catalog.dataset import ImageDataset, collate_images
from stylesearch.catalog.transforms import eval_transform
from stylesearch.config import TextConfig, from_dict
from stylesearch.model.grounding import DEFAULT_MIN_POSITIVES, VISUAL_THRESHOLD, gini
from stylesearch.model.io import read_model_config
from stylesearch.model.look_head import LookHead
from stylesearch.text.pipeline import TextPipeline
from stylesearch.training.grounding import grounding_items, synonym_items


@torch.no_grad()
def features(model, items) -> list[np.ndarray]:  # noqa: ANN001
    """``f_I``, the look, the look's grid and the head's probabilities of the items' main
    images."""
    size = model.config.image_size
    data = ImageDataset([it.image for it in items], eval_transform(size), shrink_to=size)
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for batch in DataLoader(data, batch_size=256, num_workers=2, collate_fn=collate_images):
        images = batch["images"]
        f = model.encode_images(images)
        parts[0].append(f.numpy())
        parts[1].append(model.look(images).numpy())
        parts[2].append(model.look.grid(images).numpy())
        parts[3].append(torch.sigmoid(model.attribute_logits(f)).numpy())
    return [np.concatenate(p) for p in parts]


def _standardised(x: np.ndarray, fit: np.ndarray) -> torch.Tensor:
    xs = torch.tensor(x, dtype=torch.float32)
    return (xs - xs[fit].mean(0)) / (xs[fit].std(0) + 1e-6)


def _balance(y: torch.Tensor) -> torch.Tensor:
    """Each word's positive weight: its negatives per positive, at most 50."""
    share = y.mean(0).clamp_min(1e-4)
    return ((1 - share) / share).clamp(max=50)


def probe(x: np.ndarray, labels: np.ndarray, fit: np.ndarray, decay: float) -> np.ndarray:
    """Probabilities of a per-word logistic regression on standardised ``x``, fitted on the
    ``fit`` rows (full batch, Adam, 300 steps; each word's positives weighted up to balance)."""
    torch.manual_seed(0)
    xs, y = _standardised(x, fit), torch.tensor(labels[fit], dtype=torch.float32)
    linear = torch.nn.Linear(x.shape[1], labels.shape[1])
    opt = torch.optim.Adam(linear.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(linear(xs[fit]), y, pos_weight=_balance(y))
        (loss + decay * linear.weight.pow(2).sum()).backward()
        opt.step()
    with torch.no_grad():
        return torch.sigmoid(linear(xs)).numpy()


def look_head(f: np.ndarray, grid: np.ndarray, labels: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Probabilities of the engine's look head (:class:`LookHead`, width 256) fitted on the
    ``fit`` rows of ``f`` and ``grid``."""
    head = LookHead(f.shape[1], grid.shape[1], 256, labels.shape[1])
    f, grid = torch.from_numpy(f), torch.from_numpy(grid)
    head.fit(f[fit], grid[fit], torch.from_numpy(labels[fit]))
    with torch.no_grad():
        return torch.sigmoid(head(f, grid)).numpy()


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--model", type=Path, required=True, help="the model folder")
    parser.add_argument("--catalog", type=Path, required=True, help="its training catalog")
    parser.add_argument("--threshold", type=float, default=VISUAL_THRESHOLD)
    parser.add_argument("--weight-decay", type=float, default=1e-3)
    args = parser.parse_args()
    import stylesearch

    model = stylesearch.load_model(args.model).eval()
    if model.look is None:
        raise SystemExit(f"{args.model} has no look")
    meta = read_model_config(args.model)
    every = synonym_items(model, args.catalog)
    held_ids = {it.id for it in grounding_items(model, meta, args.catalog).items}
    held = np.array([it.id in held_ids for it in every.items])
    labels = np.zeros((len(every.items), model.vocab_size), dtype=bool)
    for row, bag in enumerate(every.bags):
        labels[row, bag] = True
    f, look, grid, head = features(model, every.items)
    rows = {
        "the linear head": head,
        "probe on f_I": probe(f, labels, ~held, args.weight_decay),
        "probe on f_I and the look": probe(np.hstack([f, look]), labels, ~held, args.weight_decay),
        "the look head (an MLP on f_I and the look's grid)": look_head(f, grid, labels, ~held),
    }
    words = model.vocab.words
    text = from_dict(TextConfig, meta["text"], where="text")
    by_kind = kinds(TextPipeline(text), set(words))
    visual, other = by_kind["colour/pattern/category (with synonyms)"], by_kind["brand + filler"]
    t = args.threshold
    print(f"{held.sum()} held-out items, threshold {t:g}")
    for name, probs in rows.items():
        score = {
            w: gini(probs[held, j], labels[held, j], DEFAULT_MIN_POSITIVES)
            for j, w in enumerate(words)
        }
        scored = [w for w in visual if score[w] is not None]
        missed = sorted((w for w in scored if score[w] < t), key=lambda w: score[w])
        leaked = sorted((w for w in other if (score[w] or -1) >= t), key=lambda w: -score[w])
        print(
            f"\n{name}: colour/pattern/category visual {len(scored) - len(missed)}/{len(scored)}"
            f" scored; brand + filler not visual {len(other) - len(leaked)}/{len(other)}"
        )
        print("  missed: " + ", ".join(f"{w} {score[w]:.2f}" for w in missed))
        print("  leaked: " + ", ".join(f"{w} {score[w]:.2f}" for w in leaked))


if __name__ == "__main__":
    main()
