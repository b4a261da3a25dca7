"""Synonym groups learned from the model: the pure functions, hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from stylesearch.model.synonyms import (
    Synonyms,
    calibrate,
    cooccurrence_ratio,
    group_words,
    logit_correlation,
    pair_scores,
)


def test_logit_correlation_hand_computed():
    # logits of word 0: log(p / (1 - p)) = [-log 3, 0, log 3]; word 1 the reverse; word 2 const
    p = np.array([[0.25, 0.75, 0.5], [0.5, 0.5, 0.5], [0.75, 0.25, 0.5]])
    corr = logit_correlation(p)
    np.testing.assert_allclose(corr[0, 1], -1.0)
    np.testing.assert_allclose(corr[0, 2], 0.0)  # a constant word correlates with nothing
    np.testing.assert_allclose(np.diag(corr), 1.0)


def test_calibrate_is_the_share_of_positives_per_part():
    probs = np.array([[0.1], [0.2], [0.8], [0.9]])
    labels = np.array([[0], [1], [1], [1]], dtype=bool)
    # two parts: the two lowest probabilities (1 of 2 positive), the two highest (2 of 2)
    np.testing.assert_allclose(calibrate(probs, labels, bins=2).ravel(), [0.5, 0.5, 1.0, 1.0])


def test_cooccurrence_ratio_hand_computed():
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
    labels = np.array([[1, 1], [1, 0], [1, 0]], dtype=bool)
    ratio = cooccurrence_ratio(probs, labels, bins=None)
    # observed: words 0 and 1 together in one item; expected: 0.25 + 0.25 + 0 = 0.5
    assert ratio[0, 1] == pytest.approx(2.0)
    # word 0 with itself: observed 3, expected 0.25 + 0.25 + 1 = 1.5
    assert ratio[0, 0] == pytest.approx(2.0)
    none = cooccurrence_ratio(probs, np.zeros_like(labels), bins=None)
    assert none[0, 1] == 0.0


def test_group_words_complete_linkage():
    # 0-1 and 1-2 are close, 0-2 is not: complete linkage keeps 0 and 2 apart (single linkage
    # would chain them); 3 is close to 4 but they always come together (a phrase)
    corr = np.array(
        [
            [1.0, 0.9, 0.5, 0.0, 0.0],
            [0.9, 1.0, 0.85, 0.0, 0.0],
            [0.5, 0.85, 1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0, 0.95],
            [0.0, 0.0, 0.0, 0.95, 1.0],
        ]
    )
    ratio = np.full((5, 5), 0.5)
    ratio[3, 4] = ratio[4, 3] = 3.0
    everyone = np.ones(5, dtype=bool)
    assert group_words(corr, ratio, everyone, min_correlation=0.8, max_cooccurrence=0.95) == [
        [0, 1]
    ]
    # with the phrase allowed (a co-occurrence ratio up to 5), 3 and 4 group too
    assert group_words(corr, ratio, everyone, min_correlation=0.8, max_cooccurrence=5) == [
        [0, 1],
        [3, 4],
    ]
    # 0 is not a candidate (not visual): 1 and 2 group instead
    only = np.array([False, True, True, True, True])
    assert group_words(corr, ratio, only, min_correlation=0.8, max_cooccurrence=0.95) == [[1, 2]]
    # with anchors, only the groups holding one are kept: 3-4 (phrase allowed) has none
    anchors = np.array([False, True, False, False, False])
    assert group_words(
        corr, ratio, everyone, min_correlation=0.8, max_cooccurrence=5, anchors=anchors
    ) == [[0, 1]]  # fmt: skip
    # weak words leave every group without a strong word: 4 (weak) leaves 3-4, which has no
    # strong word; with 3 strong it stays
    weak = np.array([False, False, False, False, True])
    strong = np.array([False, False, False, False, False])
    assert group_words(
        corr, ratio, everyone, min_correlation=0.8, max_cooccurrence=5, weak=weak, strong=strong
    ) == [[0, 1]]  # fmt: skip
    strong[3] = True
    assert group_words(
        corr, ratio, everyone, min_correlation=0.8, max_cooccurrence=5, weak=weak, strong=strong
    ) == [[0, 1], [3, 4]]  # fmt: skip
    # a stricter correlation leaves nothing
    assert group_words(corr, ratio, everyone, min_correlation=0.95, max_cooccurrence=1) == []


def test_synonyms_learn_orders_by_count_and_round_trips():
    rng = np.random.default_rng(0)
    red = rng.random(200) < 0.5
    z = np.where(red, 2.0, -2.0) + rng.normal(0, 0.3, size=200)
    probs = 1 / (1 + np.exp(-np.stack([z, z - 1, -z], axis=1)))
    # red items say "red" or "scarlet" (never both); "blue" on the others
    says_red = red & (rng.random(200) < 0.7)
    labels = np.stack([says_red, red & ~says_red, ~red], axis=1)
    syn = Synonyms.learn(
        ["red", "scarlet", "blue"], [70, 30, 100], probs, labels, np.ones(3, dtype=bool),
        min_correlation=0.8, max_cooccurrence=0.95,
    )  # fmt: skip
    assert syn.groups == [["red", "scarlet"]]
    assert syn.group("scarlet") == ["red", "scarlet"] and syn.others("red") == ["scarlet"]
    assert syn.group("blue") == ["blue"] and syn.others("blue") == []
    again = Synonyms.from_dict(syn.to_dict())
    assert again.groups == syn.groups and again.items == 200
    assert not again.rare_words  # learned without anchors
    anchored = Synonyms.learn(
        ["red", "scarlet", "blue"], [70, 30, 100], probs, labels, np.ones(3, dtype=bool),
        anchors=np.array([False, True, False]),
    )  # fmt: skip
    assert anchored.groups == [["red", "scarlet"]] and anchored.rare_words
    assert Synonyms.from_dict(anchored.to_dict()).rare_words
    old = {k: v for k, v in anchored.to_dict().items() if k != "rare_words"}  # an older file
    assert not Synonyms.from_dict(old).rare_words
    assert anchored.strong_anchor is None  # learned without weak words
    strong = Synonyms.learn(
        ["red", "scarlet", "blue"], [70, 30, 100], probs, labels, np.ones(3, dtype=bool),
        anchors=np.array([True, False, False]), weak=np.array([False, True, False]),
        strong=np.array([True, False, False]), strong_anchor=0.8,
    )  # fmt: skip
    assert strong.groups == [["red", "scarlet"]]
    assert Synonyms.from_dict(strong.to_dict()).strong_anchor == 0.8
    with pytest.raises(ValueError, match="two groups"):
        Synonyms(groups=[["a", "b"], ["b", "c"]])
    with pytest.raises(ValueError, match="newer"):
        Synonyms.from_dict({"format_version": 99, "groups": []})


def test_pair_scores_hand_computed():
    truth = [["red", "scarlet", "crimson"], ["blue", "cobalt"]]
    found = [["red", "scarlet"], ["blue", "cobalt", "bag"]]
    words = ["red", "scarlet", "crimson", "blue", "cobalt", "bag"]
    s = pair_scores(found, truth, words)
    # found pairs: red-scarlet, blue-cobalt, blue-bag, cobalt-bag; true: 3 + 1 = 4 pairs
    assert s["found_pairs"] == 4 and s["true_pairs"] == 4 and s["true_found"] == 2
    assert s["precision"] == 0.5 and s["recall"] == 0.5
    # over the visual words only (crimson not among them): 3 true pairs
    s = pair_scores(found, truth, ["red", "scarlet", "blue", "cobalt", "bag"])
    assert s["true_pairs"] == 2 and s["recall"] == 1.0
