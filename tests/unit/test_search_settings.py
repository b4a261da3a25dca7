"""Search settings: where a search takes its word weights, cosine power and look weight from."""

from __future__ import annotations

import pytest

from stylesearch.search.settings import (
    DEFAULT_SETTINGS,
    SETTINGS_KEY,
    SearchSettings,
    SettingsError,
)


def test_an_untuned_index_gets_the_measured_defaults_not_one_and_one() -> None:
    settings = SearchSettings.from_manifest({"format": "stylesearch-index"})
    assert settings is DEFAULT_SETTINGS and settings.source == "default"
    assert settings.cosine_power != 1.0
    assert settings.arithmetic("combined").add_weight == DEFAULT_SETTINGS.word_weight["combined"]
    assert (
        settings.arithmetic("arithmetic").remove_weight
        == DEFAULT_SETTINGS.word_weight["arithmetic"]
    )
    # methods without words keep the plain arithmetic (text: the scale of its words is moot)
    assert settings.arithmetic("text").add_weight == 1.0


def test_recorded_settings_are_read_back_and_marked_tuned() -> None:
    manifest = {
        SETTINGS_KEY: {
            "word_weight": {"arithmetic": 1.0, "combined": 0.0},
            "cosine_power": 16,
            "tuned_on": "/q/validation.jsonl",
        }
    }
    settings = SearchSettings.from_manifest(manifest)
    assert settings.source == "tuned" and settings.tuned_on == "/q/validation.jsonl"
    assert settings.cosine_power == 16.0
    assert settings.arithmetic("combined").add_weight == 0.0
    # settings recorded before the look weight existed get the default one
    assert settings.look_weight == DEFAULT_SETTINGS.look_weight
    assert settings.to_dict() == {
        "word_weight": {"arithmetic": 1.0, "combined": 0.0},
        "cosine_power": 16.0,
        "look_weight": DEFAULT_SETTINGS.look_weight,
        "source": "tuned",
        "tuned_on": "/q/validation.jsonl",
    }


@pytest.mark.parametrize(
    "recorded",
    [
        {"word_weight": {"arithmetic": 1.0}, "cosine_power": 8},  # a method missing
        {"word_weight": {"arithmetic": 1, "combined": -1}, "cosine_power": 8},
        {"word_weight": {"arithmetic": 1, "combined": 1}, "cosine_power": 0},
        {"word_weight": {"arithmetic": 1, "combined": 1, "visual": 1}, "cosine_power": 8},
        {"word_weight": {"arithmetic": 1, "combined": True}, "cosine_power": 8},
        {"word_weight": {"arithmetic": 1, "combined": 1}, "cosine_power": float("inf")},
        {"word_weight": {"arithmetic": 1, "combined": 1}, "cosine_power": 8, "look_weight": 1.5},
        {"word_weight": {"arithmetic": 1, "combined": 1}, "cosine_power": 8, "look_weight": "a"},
        "fast",
    ],
)
def test_bad_recorded_settings_say_to_tune_again(recorded: object) -> None:
    with pytest.raises(SettingsError, match="stylesearch tune"):
        SearchSettings.from_manifest({SETTINGS_KEY: recorded})


def test_overrides_replace_values_and_say_so() -> None:
    assert DEFAULT_SETTINGS.overridden() is DEFAULT_SETTINGS
    given = DEFAULT_SETTINGS.overridden(word_weight=2.0)
    assert given.source == "given" and dict(given.word_weight) == {
        "arithmetic": 2.0,
        "combined": 2.0,
    }
    assert given.cosine_power == DEFAULT_SETTINGS.cosine_power
    power = DEFAULT_SETTINGS.overridden(cosine_power=1)
    assert power.cosine_power == 1.0 and power.word_weight == DEFAULT_SETTINGS.word_weight
    with pytest.raises(SettingsError, match=">= 0"):
        DEFAULT_SETTINGS.overridden(word_weight=-0.1)
    with pytest.raises(SettingsError, match="> 0"):
        DEFAULT_SETTINGS.overridden(cosine_power=0)
    look = DEFAULT_SETTINGS.overridden(look_weight=0)
    assert look.look_weight == 0.0 and look.source == "given"
    assert look.cosine_power == DEFAULT_SETTINGS.cosine_power
    with pytest.raises(SettingsError, match=r"in \[0, 1\]"):
        DEFAULT_SETTINGS.overridden(look_weight=1.01)
