"""How well the attribute head predicts attributes, by group (colour, pattern, category, ...).

Two scores per group:

- ``truth_ap``: against clean labels (the demo catalog's ``truth.jsonl``). A truth value ``v``
  is scored by the best probability among the vocabulary words that name it (``v`` and its
  synonyms, each normalised by the text pipeline: "crimson" counts for "red"); AP over the items
  per value, then the mean over the group's values.
- ``metadata_ap``: against the noisy metadata, per vocabulary word of the group, as a user of
  a real catalog (without clean labels) would measure it; metadata misses and mislabels
  attributes and splits one colour across synonyms, so this understates what the head learned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylesearch.catalog.manifest import CatalogItem
from stylesearch.errors import StylesearchError
from stylesearch.model.inference import predict_attributes
from stylesearch.model.joint import JointModel
from stylesearch.retrieval_metrics import average_precision
from stylesearch.text.pipeline import TextPipeline

#: group -> canonical value -> synonyms
AttributeGroups = Mapping[str, Mapping[str, Sequence[str]]]


class TruthFileError(StylesearchError, ValueError):
    """A ``truth.jsonl`` that cannot be read; the message names the line."""


def load_truth(path: str | Path) -> dict[str, dict[str, str]]:
    """``truth.jsonl`` -> {item id: {group: value}} (non-string fields are ignored)."""
    truth: dict[str, dict[str, str]] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TruthFileError(f"{path} line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "id" not in row:
                raise TruthFileError(f'{path} line {number}: expected a JSON object with an "id"')
            truth[row["id"]] = {k: v for k, v in row.items() if k != "id" and isinstance(v, str)}
    return truth


@dataclass
class GroupScore:
    truth_ap: float
    metadata_ap: float
    per_value: dict[str, float]
    words: dict[str, list[str]]  # value -> vocabulary words that name it

    def as_dict(self) -> dict:
        return {
            "truth_ap": self.truth_ap,
            "metadata_ap": self.metadata_ap,
            "per_value": self.per_value,
            "words": self.words,
        }


def attribute_ap_by_group(
    probs: np.ndarray,
    items: Sequence[CatalogItem],
    truth: Mapping[str, Mapping[str, str]],
    groups: AttributeGroups,
    *,
    vocab_words: Sequence[str],
    pipeline: TextPipeline,
) -> dict[str, GroupScore]:
    """Attribute average precision per group, against clean truth and against metadata.

    Args:
        probs: (N, V) attribute probabilities of ``items`` (:func:`predict_attributes`).
        items: the N catalog items (their metadata gives the noisy labels).
        truth: item id -> {group: canonical value}; items without truth are skipped.
        groups: group -> canonical value -> synonyms.
        vocab_words: the model's vocabulary, in attribute-head order.
        pipeline: the model's text pipeline (normalises value names and metadata).
    """
    index = {w: i for i, w in enumerate(vocab_words)}
    keep = [i for i, it in enumerate(items) if it.id in truth]
    probs = probs[keep]
    kept_items = [items[i] for i in keep]
    meta_bags = [set(b) for b in pipeline.words_many([it.text for it in kept_items])]
    scores: dict[str, GroupScore] = {}
    for group, values in groups.items():
        per_value: dict[str, float] = {}
        words_of: dict[str, list[str]] = {}
        meta_aps: list[float] = []
        for value, synonyms in values.items():
            tokens = []
            for name in (value, *synonyms):
                tok = pipeline.normalize_query_word(name)
                if tok is not None and tok in index and tok not in tokens:
                    tokens.append(tok)
            words_of[value] = tokens
            if not tokens:
                continue
            cols = [index[t] for t in tokens]
            labels = np.array([truth[it.id].get(group) == value for it in kept_items])
            ap = average_precision(probs[:, cols].max(axis=1), labels)
            if not np.isnan(ap):
                per_value[value] = ap
            for tok, col in zip(tokens, cols, strict=True):
                meta_ap = average_precision(probs[:, col], np.array([tok in b for b in meta_bags]))
                if not np.isnan(meta_ap):
                    meta_aps.append(meta_ap)
        scores[group] = GroupScore(
            truth_ap=float(np.mean(list(per_value.values()))) if per_value else float("nan"),
            metadata_ap=float(np.mean(meta_aps)) if meta_aps else float("nan"),
            per_value=per_value,
            words=words_of,
        )
    return scores


def evaluate_attributes(
    model: JointModel,
    items: Sequence[CatalogItem],
    truth: Mapping[str, Mapping[str, str]],
    groups: AttributeGroups,
    *,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, GroupScore]:
    """Predict the items' attributes with ``model`` and score them per group (both ways)."""
    if model.vocab is None or model.text_config is None:
        raise ValueError("the model has no vocabulary: load it with stylesearch.load_model")
    probs = predict_attributes(model, items, device=device, progress=progress)
    return attribute_ap_by_group(
        probs, items, truth, groups,
        vocab_words=model.vocab.words, pipeline=TextPipeline(model.text_config),
    )  # fmt: skip
