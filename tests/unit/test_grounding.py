"""Visual grounding per word: the scores by hand, grounding.json in a model folder, old folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stylesearch.config import ModelConfig, TextConfig
from stylesearch.model import JointModel, load_model, save_model
from stylesearch.model.grounding import (
    METHOD,
    Grounding,
    ap_lift,
    check_threshold,
    gini,
    grounding_scores,
    not_visual_note,
    visual_mask,
    vocabulary_rows,
    word_grounding,
)
from stylesearch.model.io import GROUNDING_FILE, read_grounding, save_grounding
from stylesearch.model.synonyms import Synonyms
from stylesearch.text.vocabulary import Vocabulary

WORDS = ["red", "dress", "nordwind"]


# --- the scores, by hand ------------------------------------------------------------------------


def test_gini_by_hand() -> None:
    # positives at 0.9 and 0.7, negatives at 0.8 and 0.1: 3 of the 4 (pos, neg) pairs are in
    # order, AUC 3/4, Gini 2 * 0.75 - 1 = 0.5
    assert gini(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx(0.5)
    assert gini(np.array([0.9, 0.1]), np.array([1, 0])) == pytest.approx(1.0)
    assert gini(np.array([0.1, 0.9]), np.array([1, 0])) == pytest.approx(-1.0)


def test_gini_counts_ties_one_half() -> None:
    assert gini(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.0)
    # the positive ties one negative (1/2) and beats the other (1): AUC 3/4
    assert gini(np.array([0.5, 0.5, 0.2]), np.array([1, 0, 0])) == pytest.approx(0.5)


def test_ap_lift_by_hand() -> None:
    # ranking pos, neg, pos: AP = (1/1 + 2/3) / 2 = 5/6; base rate 1/2; lift (5/6 - 1/2) / (1/2)
    lift = ap_lift(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0]))
    assert lift == pytest.approx(2 / 3)
    # a perfect ranking lifts 1 whatever the base rate
    assert ap_lift(np.array([0.9, 0.8, 0.1, 0.0]), np.array([1, 0, 0, 0])) == pytest.approx(1.0)


def test_too_few_positives_or_no_negative_get_no_score() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    assert gini(scores, np.array([1, 0, 0, 0]), min_positives=2) is None
    assert gini(scores, np.array([0, 0, 0, 0])) is None
    assert gini(scores, np.array([1, 1, 1, 1])) is None
    assert ap_lift(scores, np.array([1, 1, 1, 1])) is None
    assert gini(scores, np.array([1, 1, 0, 0]), min_positives=2) == pytest.approx(1.0)


def test_grounding_scores_by_column() -> None:
    probs = np.array([[0.9, 0.2], [0.8, 0.3], [0.7, 0.4], [0.1, 0.5]])
    labels = np.array([[1, 0], [0, 0], [1, 0], [0, 1]], dtype=bool)
    assert grounding_scores(probs, labels, min_positives=2) == [pytest.approx(0.5), None]
    assert grounding_scores(probs, labels, min_positives=1)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        grounding_scores(probs, labels[:3])


def test_grounding_visual_and_rows() -> None:
    g = Grounding(scores={"red": 0.9, "dress": 0.5, "nordwind": None}, items=10)
    assert g.visual("red") and not g.visual("dress") and not g.visual("nordwind")
    assert g.visual("dress", threshold=0.4)
    assert word_grounding(g, "red") == (0.9, True)
    assert word_grounding(None, "red") == (None, True)  # no grounding: as before
    rows = vocabulary_rows(WORDS, [3, 9, 4], g)
    assert [r["word"] for r in rows] == ["red", "dress", "nordwind"]
    assert rows[2] == {"word": "nordwind", "count": 4, "grounding": None, "visual": False}
    # without grounding: every word visual, most frequent first
    assert [r["word"] for r in vocabulary_rows(WORDS, [3, 9, 4], None)] == [
        "dress", "nordwind", "red",
    ]  # fmt: skip


def test_visual_mask_by_hand() -> None:
    grounding = Grounding(scores={"red": 0.9, "dress": 0.75, "nordwind": None}, items=10)
    assert visual_mask(grounding, WORDS).tolist() == [True, True, False]
    assert visual_mask(grounding, WORDS, 0.8).tolist() == [True, False, False]
    assert visual_mask(grounding, [*WORDS, "unscored"], -1.0).tolist() == [True, True, False, False]
    # no grounding scores (an old model folder), or the grounding not acted on: every word
    assert visual_mask(None, WORDS).tolist() == [True] * 3
    assert visual_mask(grounding, WORDS, None).tolist() == [True] * 3
    assert visual_mask(grounding, []).shape == (0,)


def test_visual_mask_judges_a_word_not_visual_by_score_by_its_synonyms() -> None:
    words = ["red", "azure", "dress", "sand", "frock", "gown"]
    scores = {"red": 0.9, "azure": None, "dress": 0.6, "sand": None, "frock": 0.7, "gown": 0.8}
    grounding = Grounding(scores=scores, items=10)
    # azure (no score) is grouped with red (0.9): visual; sand (no score) only with dress
    # (0.6): not; frock scores 0.7, below, but its group holds gown (0.8): visual
    synonyms = Synonyms(groups=[["red", "azure"], ["dress", "sand"], ["gown", "frock"]])
    by_score = [True, False, False, False, False, True]
    assert visual_mask(grounding, words, 0.75).tolist() == by_score
    with_groups = visual_mask(grounding, words, 0.75, synonyms)
    assert with_groups.tolist() == [True, True, False, False, True, True]
    # at a lower threshold dress is visual, and sand with it
    assert visual_mask(grounding, words, 0.5, synonyms).tolist() == [True] * 6
    # at a higher one gown is not, and frock falls with it
    assert visual_mask(grounding, words, 0.85, synonyms).tolist() == [True, True] + [False] * 4
    assert visual_mask(None, words, 0.75, synonyms).tolist() == [True] * 6
    rows = {r["word"]: r for r in vocabulary_rows(words, [5] * 6, grounding, 0.75, synonyms)}
    assert rows["azure"]["visual"] and rows["azure"]["grounding"] is None
    assert rows["frock"]["visual"] and not rows["sand"]["visual"]


def test_check_threshold() -> None:
    assert check_threshold(0.5) == 0.5 and check_threshold(-1) == -1.0
    assert check_threshold(None) is None
    for bad in (1.01, -1.5, float("nan"), float("inf"), "0.5", True):
        with pytest.raises(ValueError, match=r"number in \[-1, 1\]"):
            check_threshold(bad)


def test_not_visual_note_names_the_words_and_their_scores() -> None:
    grounding = Grounding(scores={"nordwind": 0.0512, "sand": None}, items=10)
    one = not_visual_note(grounding, ["nordwind"], 0.75)
    assert one.startswith("not visual, not used to rank: nordwind (grounding 0.051); ")
    assert "cannot show it" in one and "threshold is 0.75" in one and "on it still works" in one
    two = not_visual_note(grounding, ["nordwind", "sand"], 0.6)
    assert "sand (too few held-out items to score)" in two and "on them still works" in two


def test_grounding_round_trip_and_bad_files() -> None:
    probs = np.array([[0.9, 0.2], [0.8, 0.3], [0.7, 0.4], [0.1, 0.5]])
    labels = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=bool)
    g = Grounding.from_arrays(["red", "dress"], probs, labels, min_positives=2, source="here")
    data = json.loads(json.dumps(g.to_dict()))
    assert data["method"] == METHOD and data["items"] == 4 and data["format_version"] == 1
    back = Grounding.from_dict(data)  # scores are kept to 6 decimals
    assert back.scores == pytest.approx(g.scores) and back.ap_lift == pytest.approx(g.ap_lift)
    assert (back.items, back.source, back.min_positives) == (4, "here", 2)
    assert g.ap_lift["red"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no scores"):
        Grounding.from_dict({"method": METHOD})
    with pytest.raises(ValueError, match="not a number"):
        Grounding.from_dict({"scores": {"red": "high"}})
    with pytest.raises(ValueError, match="newer"):
        Grounding.from_dict({"scores": {}, "format_version": 99})


# --- grounding.json in a model folder ----------------------------------------------------------


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    model = JointModel(ModelConfig(embed_dim=8, image_size=32), vocab_size=len(WORDS))
    vocab = Vocabulary(WORDS, [30, 20, 10], n_items=40, min_count=2)
    save_model(model.eval(), tmp_path / "m", vocab=vocab, text_config=TextConfig())
    return tmp_path / "m"


def test_an_old_model_folder_loads_without_grounding(model_dir) -> None:
    assert not (model_dir / GROUNDING_FILE).exists()
    model = load_model(model_dir)
    assert model.grounding is None
    assert read_grounding(model_dir) is None


def test_saved_grounding_loads_with_the_model(model_dir) -> None:
    g = Grounding(scores={"red": 0.9, "dress": 0.8, "nordwind": None}, items=12, source="x")
    path = save_grounding(model_dir, g)
    assert path.name == GROUNDING_FILE
    assert not [p.name for p in model_dir.iterdir() if p.name.endswith(".tmp")]
    data = json.loads(path.read_text())
    config = json.loads((model_dir / "config.json").read_text())
    assert data["weights_sha256"] == config["weights_sha256"]
    assert data["vocab_fingerprint"] == config["vocab_fingerprint"]
    loaded = load_model(model_dir).grounding
    assert loaded is not None and loaded.scores == g.scores and loaded.items == 12


def test_grounding_of_another_save_is_ignored_and_resaving_drops_it(model_dir) -> None:
    save_grounding(model_dir, Grounding(scores=dict.fromkeys(WORDS, 0.5), items=3))
    data = json.loads((model_dir / GROUNDING_FILE).read_text())
    data["weights_sha256"] = "0" * 64
    (model_dir / GROUNDING_FILE).write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="another save"):
        assert load_model(model_dir).grounding is None
    (model_dir / GROUNDING_FILE).write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable"):
        assert load_model(model_dir).grounding is None
    save_grounding(model_dir, Grounding(scores=dict.fromkeys(WORDS, 0.5), items=3))
    vocab = Vocabulary(WORDS, [30, 20, 10], n_items=40, min_count=2)
    fresh = JointModel(ModelConfig(embed_dim=8, image_size=32), vocab_size=len(WORDS))
    save_model(fresh.eval(), model_dir, vocab=vocab, text_config=TextConfig())
    assert not (model_dir / GROUNDING_FILE).exists()  # it scored the replaced weights


def test_grounding_must_score_the_folders_words(model_dir) -> None:
    from stylesearch.model import ModelFolderError

    with pytest.raises(ModelFolderError, match="vocabulary has 3"):
        save_grounding(model_dir, Grounding(scores={"red": 1.0}, items=1))


# --- synonyms.json in a model folder -----------------------------------------------------------


def test_synonyms_load_with_the_model_and_resaving_drops_them(model_dir) -> None:
    from stylesearch.model.io import SYNONYMS_FILE, save_synonyms
    from stylesearch.model.synonyms import Synonyms

    assert load_model(model_dir).synonyms is None  # a folder saved before synonyms existed
    save_synonyms(model_dir, Synonyms(groups=[[WORDS[0], WORDS[1]]], items=40))
    loaded = load_model(model_dir).synonyms
    assert loaded is not None and loaded.groups == [[WORDS[0], WORDS[1]]]
    vocab = Vocabulary(WORDS, [30, 20, 10], n_items=40, min_count=2)
    fresh = JointModel(ModelConfig(embed_dim=8, image_size=32), vocab_size=len(WORDS))
    save_model(fresh.eval(), model_dir, vocab=vocab, text_config=TextConfig())
    assert not (model_dir / SYNONYMS_FILE).exists()  # it grouped the replaced weights


def test_an_old_text_config_loads_without_pattern_participles(model_dir) -> None:
    """A folder saved before ``pattern_participles`` existed built its vocabulary without it."""
    config = json.loads((model_dir / "config.json").read_text())
    assert config["text"]["pattern_participles"] is True
    assert load_model(model_dir).text_config.pattern_participles is True
    del config["text"]["pattern_participles"]
    (model_dir / "config.json").write_text(json.dumps(config))
    assert load_model(model_dir).text_config.pattern_participles is False
