import pytest

from stylesearch.config import (
    Config,
    ConfigError,
    TrainConfig,
    from_dict,
    load_config,
    load_table,
    to_dict,
)


def test_defaults_validate():
    cfg = load_config(None)
    assert cfg.loss.name == "mbmr"
    assert cfg.model.backbone == "resnet18"


def test_toml_sections_override_fields(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[model]\nembed_dim = 64\ntemperature = 1\n[loss]\nname = "triplet"\n[train]\nepochs = 3\n'
    )
    cfg = load_config(path)
    assert cfg.model.embed_dim == 64
    assert cfg.model.temperature == 1.0 and isinstance(cfg.model.temperature, float)
    assert cfg.loss.name == "triplet"
    assert cfg.train.epochs == 3
    assert cfg.train.batch_size == Config().train.batch_size


@pytest.mark.parametrize(
    "text, message",
    [
        ("[model]\nembed_dims = 3\n", "unknown key(s): embed_dims"),
        ("[modle]\n", "unknown key(s): modle"),
        ('[train]\nepochs = "ten"\n', "epochs: expected int"),
        ("[model]\nlearn_temperature = 1\n", "expected true or false"),
        ('[loss]\nname = "hinge"\n', "choose one of: mbmr, triplet"),
        ("[train]\nbatch_size = 1\n", "batch_size"),
        ("[model]\ntemperature = 5.0\n", "min_temperature <= temperature"),
        ("[train\n", "not valid TOML"),
        ("[loss]\nsame_item_weight = -1.0\n", "same_item_weight must be >= 0"),
        ("[loss]\nsame_item_temperature = 0.0\n", "same_item_temperature > 0"),
        ("[loss]\nsame_item_dims = 9999\n", "same_item_dims must be in 0..embed_dim"),
        ("[model]\nlook_head = -1\n", "look_head must be in 0..4096"),
    ],
)
def test_bad_configs_are_rejected_with_a_fix(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/config.toml")


def test_round_trip_through_dict():
    cfg = Config()
    assert from_dict(Config, to_dict(cfg)) == cfg


def test_optional_fields_accept_none_and_values():
    cfg = from_dict(Config, {"text": {"min_count": 7, "max_words": None}})
    assert cfg.text.min_count == 7 and cfg.text.max_words is None


def test_the_visual_table_is_train_visuals(tmp_path):
    path = tmp_path / "both.toml"
    path.write_text("[train]\nepochs = 3\n[visual]\nepochs = 7\nlr = 1\n")
    assert load_config(path).train.epochs == 3  # train leaves [visual] alone
    visual = load_table(path, "visual", TrainConfig)
    assert visual.epochs == 7 and visual.lr == 1.0
    with pytest.raises(
        ConfigError, match=r"no \[loss\] table \(tables found: \[train\], \[visual\]\)"
    ):
        load_table(path, "loss", TrainConfig)
