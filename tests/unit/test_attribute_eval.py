from pathlib import Path

import numpy as np
import pytest

from stylesearch.catalog.manifest import CatalogItem
from stylesearch.evaluation.attributes import attribute_ap_by_group


class SplitPipeline:
    """Stand-in text pipeline: lowercase whitespace tokens."""

    def normalize_query_word(self, word):
        return word.lower()

    def words_many(self, texts, **_):
        return [t.lower().split() for t in texts]


def item(i, title):
    return CatalogItem(id=f"i{i}", image=Path(f"/x/{i}.png"), title=title)


def test_truth_merges_synonyms_and_metadata_scores_per_word():
    vocab = ["red", "crimson", "blue"]
    items = [item(0, "red"), item(1, "crimson"), item(2, "blue"), item(3, "blue")]
    truth = {
        "i0": {"colour": "red"},
        "i1": {"colour": "red"},
        "i2": {"colour": "blue"},
        "i3": {"colour": "red"},
    }  # i3's metadata is wrong: it says blue
    probs = np.array(
        [
            # red  crimson blue
            [0.9, 0.1, 0.0],
            [0.2, 0.8, 0.1],
            [0.1, 0.0, 0.9],
            [0.7, 0.0, 0.3],
        ]
    )
    groups = {"colour": {"red": ["crimson"], "blue": []}}
    scores = attribute_ap_by_group(
        probs, items, truth, groups, vocab_words=vocab, pipeline=SplitPipeline()
    )
    s = scores["colour"]
    assert s.words == {"red": ["red", "crimson"], "blue": ["blue"]}
    # red: score = max(red, crimson) = [0.9, 0.8, 0.1, 0.7], positives i0, i1, i3 -> ranked 1,2,3
    assert s.per_value["red"] == pytest.approx(1.0)
    # blue: scores [0, .1, .9, .3]; only i2 is blue -> rank 1
    assert s.per_value["blue"] == pytest.approx(1.0)
    assert s.truth_ap == pytest.approx(1.0)
    # metadata, per word: red -> only i0 positive, scores [.9,.2,.1,.7] -> AP 1
    # crimson -> only i1, scores [.1,.8,0,0] -> AP 1
    # blue -> i2, i3 positive, scores [0,.1,.9,.3] -> ranks 1,2 -> AP 1
    assert s.metadata_ap == pytest.approx(1.0)


def test_metadata_understates_when_labels_are_wrong():
    vocab = ["red", "blue"]
    items = [item(0, "blue"), item(1, "red"), item(2, "blue")]
    truth = {"i0": {"colour": "red"}, "i1": {"colour": "red"}, "i2": {"colour": "blue"}}
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
    s = attribute_ap_by_group(
        probs,
        items,
        truth,
        {"colour": {"red": [], "blue": []}},
        vocab_words=vocab,
        pipeline=SplitPipeline(),
    )["colour"]
    assert s.truth_ap == pytest.approx(1.0)
    # metadata red: positive i1 (0.8) ranked 2nd -> 0.5 ; blue: positives i0 (0.1), i2 (0.9)
    # ranking by blue prob: i2, i1, i0 -> precisions 1/1, 2/3 -> 5/6
    assert s.metadata_ap == pytest.approx((0.5 + 5 / 6) / 2)


def test_values_missing_from_the_vocabulary_are_listed_but_not_scored():
    items = [item(0, "red"), item(1, "blue")]
    truth = {"i0": {"colour": "red"}, "i1": {"colour": "blue"}}
    probs = np.array([[0.9], [0.1]])
    s = attribute_ap_by_group(
        probs,
        items,
        truth,
        {"colour": {"red": [], "blue": []}},
        vocab_words=["red"],
        pipeline=SplitPipeline(),
    )["colour"]
    assert s.words["blue"] == []
    assert list(s.per_value) == ["red"]
