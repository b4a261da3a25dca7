"""The paper's ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stylesearch.evaluation.metrics import (
    category_preservation,
    centred_unit_rows,
    dcg,
    ideal_dcg,
    mm,
    ndcg,
    oracle_ranking,
    requirement_fraction,
    visual_relevance,
)


def test_dcg_hand_values() -> None:
    # 3/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5)
    expected = 3.0 + 2.0 / math.log2(3) + 0.0 + 1.0 / math.log2(5)
    assert dcg([3, 2, 0, 1], 10) == pytest.approx(expected)
    assert dcg([3, 2, 0, 1], 2) == pytest.approx(3.0 + 2.0 / math.log2(3))
    assert dcg([], 5) == 0.0
    with pytest.raises(ValueError):
        dcg([1.0], 0)


def test_ideal_dcg_uses_the_whole_catalog() -> None:
    catalog = np.array([0.1, 0.9, 0.0, 0.5, 0.7])
    # ideal top-3: 0.9, 0.7, 0.5
    expected = 0.9 + 0.7 / math.log2(3) + 0.5 / 2.0
    assert ideal_dcg(catalog, 3) == pytest.approx(expected)
    assert ideal_dcg(catalog, 10) == pytest.approx(dcg(sorted(catalog, reverse=True), 10))


def test_ndcg_hand_value() -> None:
    catalog = np.array([1.0, 0.5, 0.5, 0.0, 0.0])
    ranked = [0.5, 1.0, 0.0]  # the returned list's gains in rank order
    num = 0.5 + 1.0 / math.log2(3) + 0.0
    den = 1.0 + 0.5 / math.log2(3) + 0.5 / 2.0
    assert ndcg(ranked, catalog, 3) == pytest.approx(num / den)
    assert ndcg([1.0, 0.5, 0.5], catalog, 3) == pytest.approx(1.0)


def test_ndcg_short_list_and_empty_catalog() -> None:
    catalog = np.array([1.0, 1.0, 1.0])
    # one result of three possible: 1 / (1 + 1/log2(3) + 1/2)
    assert ndcg([1.0], catalog, 3) == pytest.approx(1.0 / (1 + 1 / math.log2(3) + 0.5))
    assert ndcg([], catalog, 3) == 0.0
    assert ndcg([0.0, 0.0], np.zeros(4), 2) == 0.0


def test_visual_relevance_clips_negative_cosines() -> None:
    np.testing.assert_allclose(visual_relevance(np.array([-0.3, 0.0, 0.8])), [0.0, 0.0, 0.8])


def test_requirement_fraction() -> None:
    # items:            0      1      2      3
    has_red = np.array([True, True, False, False])
    has_striped = np.array([True, False, True, False])
    # +red -striped: item 0 -> 1/2, item 1 -> 2/2, item 2 -> 0/2, item 3 -> 1/2
    got = requirement_fraction(has_red[None], has_striped[None])
    np.testing.assert_allclose(got, [0.5, 1.0, 0.0, 0.5])
    # only unwanted words
    got = requirement_fraction(np.zeros((0, 4), bool), has_striped[None])
    np.testing.assert_allclose(got, [0.0, 1.0, 0.0, 1.0])
    # no requirement at all: every item satisfies everything
    np.testing.assert_allclose(
        requirement_fraction(np.zeros((0, 4), bool), np.zeros((0, 4), bool)), np.ones(4)
    )
    with pytest.raises(ValueError):
        requirement_fraction(has_red[None], np.zeros((1, 3), bool))


def test_mm_is_the_geometric_mean() -> None:
    assert mm(0.81, 0.49) == pytest.approx(math.sqrt(0.81 * 0.49))
    assert mm(0.0, 1.0) == 0.0


def test_centred_unit_rows_hand_values() -> None:
    pixels = np.array([[2.0, 0.0, 4.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    mean = np.array([1.0, 1.0, 1.0])
    out = centred_unit_rows(pixels, mean)
    # row 0: (1, -1, 3) / sqrt(11); row 1: (-1, -1, -1) / sqrt(3); row 2 equals the mean -> 0
    np.testing.assert_allclose(out[0], np.array([1.0, -1.0, 3.0]) / math.sqrt(11))
    np.testing.assert_allclose(out[1], -np.ones(3) / math.sqrt(3))
    np.testing.assert_array_equal(out[2], np.zeros(3))
    # images of any shape are flattened per row
    assert centred_unit_rows(np.ones((2, 2, 2)), np.zeros(4)).shape == (2, 4)


def test_category_preservation_hand_values() -> None:
    assert category_preservation(["dress", "coat", "dress"], "dress", 3) == pytest.approx(2 / 3)
    # a short list: the missing ranks are not preserved
    assert category_preservation(["dress"], "dress", 4) == pytest.approx(0.25)
    # only the first K count
    assert category_preservation(np.array(["coat", "dress", "dress"]), "dress", 1) == 0.0
    with pytest.raises(ValueError):
        category_preservation([], "dress", 0)


def test_oracle_ranking_keeps_the_most_relevant_items_that_meet_every_requirement() -> None:
    meets = np.array([True, False, True, True, True])
    relevance = np.array([0.5, 0.99, 0.7, 0.5, 0.1])
    # row 1 is the most relevant but fails a requirement; rows 0 and 3 tie: row order
    np.testing.assert_array_equal(oracle_ranking(meets, relevance, 3), [2, 0, 3])
    np.testing.assert_array_equal(oracle_ranking(meets, relevance, 10), [2, 0, 3, 4])
    assert oracle_ranking(np.zeros(3, dtype=bool), relevance[:3], 2).size == 0


def test_tuning_objective_is_the_geometric_mean_of_both_mms() -> None:
    from stylesearch.evaluation.tuning import objective

    assert objective({"mm": 0.36, "mm_shape": 0.64}) == pytest.approx(0.48)
    assert objective({"mm": 0.36, "mm_shape": None}) == pytest.approx(0.36)  # no shape judge


def test_tuning_keeps_the_words_obeyed_on_every_query_kind() -> None:
    from stylesearch.evaluation.tuning import choose_setting

    rows = [
        {
            "name": "best objective, a kind below",
            "objective": 0.72,
            "t_ndcg_truth_worst_kind": 0.94,
        },
        {"name": "kept", "objective": 0.71, "t_ndcg_truth_worst_kind": 0.95},
        {"name": "kept, lower", "objective": 0.70, "t_ndcg_truth_worst_kind": 0.99},
    ]
    assert choose_setting(rows, 0.95)["name"] == "kept"
    assert choose_setting(rows, 0.0)["name"] == "best objective, a kind below"
    # none reaches the floor (or there is no truth): the best objective of all
    assert choose_setting(rows, 0.999)["name"] == "best objective, a kind below"
    no_truth = [{"objective": 0.5, "t_ndcg_truth_worst_kind": None}, {"objective": 0.6}]
    assert choose_setting(no_truth, 0.95)["objective"] == 0.6
    assert choose_setting(no_truth, 0.95, tie=0.2)["objective"] == 0.6


def test_tuning_breaks_a_tie_of_objectives_towards_the_words() -> None:
    from stylesearch.evaluation.tuning import choose_setting

    rows = [
        {"name": "best", "objective": 0.7318, "t_ndcg_truth_worst_kind": 0.9523},
        {"name": "tied, words", "objective": 0.7314, "t_ndcg_truth_worst_kind": 0.9811},
        {"name": "further", "objective": 0.7289, "t_ndcg_truth_worst_kind": 0.9900},
        {"name": "below floor", "objective": 0.7327, "t_ndcg_truth_worst_kind": 0.9310},
    ]
    # 0.7314 is within 0.002 of 0.7318 and obeys the words better; 0.7289 is 0.0029 below
    assert choose_setting(rows, 0.95, tie=0.002)["name"] == "tied, words"
    assert choose_setting(rows, 0.95, tie=0.0)["name"] == "best"
    assert choose_setting(rows, 0.95, tie=0.003)["name"] == "further"
    # the floor applies first: the row below it ties with none
    assert choose_setting(rows, 0.0, tie=0.0)["name"] == "below floor"


def test_the_tune_command_defaults_are_the_tuning_modules():
    # the command imports the tuning module only when it runs, so it repeats the defaults
    from stylesearch.cli.tune import parse_floats, tune_cmd
    from stylesearch.evaluation import tuning

    defaults = {p.name: p.default for p in tune_cmd.params}
    for option, grid in [("word_weights", tuning.WORD_WEIGHTS),
                         ("cosine_powers", tuning.COSINE_POWERS),
                         ("look_weights", tuning.LOOK_WEIGHTS)]:  # fmt: skip
        assert tuple(parse_floats(defaults[option], option)) == grid
    assert defaults["min_truth_t"] == tuning.MIN_TRUTH_T
    assert defaults["tie"] == tuning.OBJECTIVE_TIE
