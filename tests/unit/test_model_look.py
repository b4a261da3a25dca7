"""The look (model/look.py) and the index vectors it joins: hand-computed values."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from stylesearch.catalog.transforms import IMAGENET_MEAN, IMAGENET_STD
from stylesearch.config import LOOK_KINDS, ModelConfig
from stylesearch.model import JointModel, load_model, save_model
from stylesearch.model.io import current_look_version
from stylesearch.model.look import FLOOR_KINDS, GRID, LOOK_VERSIONS, ShapeLook
from stylesearch.model.silhouette import shading_floor
from stylesearch.search.scoring import with_look
from stylesearch.text.vocabulary import Vocabulary

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _normalised(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> the model's ImageNet-normalised input."""
    return (rgb - MEAN) / STD


def _garment(size: int = 64) -> torch.Tensor:
    """A light background with a darker rectangle: ``(1, 3, size, size)`` RGB in [0, 1]."""
    rgb = torch.full((1, 3, size, size), 0.9)
    rgb[:, :, size // 4 : size // 2, size // 8 : size // 2] = 0.3
    return rgb


def test_the_luminance_grid_is_blind_to_brightness_and_contrast():
    look = ShapeLook(64, 4, "luminance")
    a = look.grid(_normalised(_garment()))
    b = look.grid(_normalised(0.5 * _garment() + 0.2))  # every pixel mapped by one affine map
    assert a.shape == (1, GRID * GRID)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    assert float(a.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(a.pow(2).mean()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("kind", LOOK_KINDS)
def test_a_constant_image_has_a_zero_grid(kind):
    look = ShapeLook(64, 4, kind)
    if kind in FLOOR_KINDS:
        look.fit_floor(torch.tensor([0.5]))
    assert not look.grid(_normalised(torch.full((2, 3, 64, 64), 0.4))).any()


def test_the_silhouette_grid_is_the_area_mean_of_the_shaded_silhouette():
    rgb = _garment()  # a 16 x 24 rectangle of 0.3 (76.5 of 255) on 0.9
    grid = ShapeLook(64, 4, "silhouette").grid(_normalised(rgb)).view(GRID, GRID)
    # 64 px on a 32-cell grid: each cell averages 2 x 2 pixels. The rectangle covers rows
    # 16-31 and columns 8-31, eroded by one pixel: rows 17-30, columns 9-30, all of one tone
    # (relative shading 1). Cells 9-14 / 5-14 are inside; the edge cells hold half of it.
    assert float(grid[9:15, 5:15].min()) == pytest.approx(1.0, abs=1e-5)
    assert float(grid[8, 5:15].max()) == pytest.approx(0.5, abs=1e-5)
    assert float(grid[8:16, 4].max()) == pytest.approx(0.5, abs=1e-5)
    assert float(grid[:8].abs().max()) == 0.0 and float(grid[16:].abs().max()) == 0.0


def _two_tones(size: int = 64) -> torch.Tensor:
    """A garment on 0.9 whose top half is 0.3 and bottom half 0.15, half as light:
    ``(1, 3, size, size)`` RGB in [0, 1] (rows 8-55, columns 8-55)."""
    rgb = torch.full((1, 3, size, size), 0.9)
    rgb[:, :, 8:32, 8:56] = 0.3
    rgb[:, :, 32:56, 8:56] = 0.15
    return rgb


def test_the_shading_grid_stretches_the_shading_from_the_floor():
    images = _normalised(_two_tones())
    plain = ShapeLook(64, 4, "silhouette").grid(images).view(GRID, GRID)
    look = ShapeLook(64, 4, "shading")
    look.fit_floor(torch.tensor([0.25]))
    grid = look.grid(images).view(GRID, GRID)
    # the dark half, more than the 4-pixel tone window below the light one (pixel rows 37-54,
    # cells 19-26), has relative shading 0.5; stretched from the floor 0.25:
    # 0.1 + 0.9 x (0.5 - 0.25) / 0.75 = 0.4. The light half (cells 5-15) stays 1.
    assert float(plain[19:27, 5:27].min()) == pytest.approx(0.5, abs=1e-5)
    assert float(grid[19:27, 5:27].min()) == pytest.approx(0.4, abs=1e-5)
    assert float(grid[19:27, 5:27].max()) == pytest.approx(0.4, abs=1e-5)
    assert float(grid[5:16, 5:27].min()) == pytest.approx(1.0, abs=1e-5)
    assert float(grid[:4].abs().max()) == 0.0


def test_the_shading_floor_must_be_fitted_first():
    look = ShapeLook(64, 4, "shading")
    with pytest.raises(RuntimeError, match="shading floor is not fitted"):
        look.grid(_normalised(_two_tones()))
    with pytest.raises(ValueError, match="no shading floor"):
        ShapeLook(64, 4, "silhouette").fit_floor(torch.tensor([0.5]))


def test_the_floor_is_read_from_the_catalog_images_then_one_pass_gives_grids_and_features(
    tmp_path,
):
    from PIL import Image

    from stylesearch.training.look import fit_look_floor, read_images

    paths = []
    for i, rgb in enumerate((_two_tones(), _garment(), _two_tones())):
        pixels = (rgb[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    model = JointModel(ModelConfig(embed_dim=8, image_size=64, look_dim=2), vocab_size=3)
    fit_look_floor(model, paths)
    images = _normalised(torch.cat([_two_tones(), _garment(), _two_tones()]))
    expected = shading_floor(model.look.tones(images))
    assert float(model.look.floor) == pytest.approx(expected)
    # most garment pixels are at 1, the dark halves' at 0.5 (38 / 76 of 255, once rounded)
    assert 0.49 < expected < 0.51
    features, grids = read_images(model, paths)
    saved = torch.stack([torch.from_numpy(np.asarray(Image.open(p))) for p in paths])
    saved = _normalised(saved.permute(0, 3, 1, 2).float() / 255)  # as the files hold them
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(features, model.encode_images(saved))
    torch.testing.assert_close(grids, model.look.grid(saved))
    model.look.fit(grids)
    assert bool(model.look.fitted)
    no_look = JointModel(ModelConfig(embed_dim=8, image_size=64, look_dim=0), vocab_size=3)
    fit_look_floor(no_look, paths)  # nothing to fit
    features, grids = read_images(no_look, paths)
    assert features.shape == (3, 8) and grids is None


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown look kind 'edges'"):
        ShapeLook(64, 4, "edges")


def test_fit_keeps_the_mean_and_the_directions_of_largest_variance():
    cells = GRID * GRID
    grids = torch.zeros(4, cells)
    grids[:, 5] = 1.0  # the mean: 1 in cell 5
    grids[0, 0], grids[1, 0] = 2.0, -2.0  # variance 8 / 4 along cell 0
    grids[2, 1], grids[3, 1] = 1.0, -1.0  # variance 2 / 4 along cell 1
    look = ShapeLook(64, 2)
    look.fit(grids)
    expected_mean = torch.zeros(cells)
    expected_mean[5] = 1.0
    torch.testing.assert_close(look.mean, expected_mean)
    first, second = look.basis[:, 0], look.basis[:, 1]
    assert abs(float(first[0])) == pytest.approx(1.0) and float(first.abs().sum()) == pytest.approx(
        1.0
    )
    assert abs(float(second[1])) == pytest.approx(1.0) and float(
        second.abs().sum()
    ) == pytest.approx(1.0)
    assert bool(look.fitted)


def test_fit_needs_two_grids_of_the_right_size():
    look = ShapeLook(64, 2)
    with pytest.raises(ValueError, match="at least 2 grids"):
        look.fit(torch.zeros(1, GRID * GRID))
    with pytest.raises(ValueError, match="at least 2 grids"):
        look.fit(torch.zeros(3, 10))


def test_an_unfitted_look_refuses_to_encode():
    with pytest.raises(RuntimeError, match="not fitted"):
        ShapeLook(64, 2)(_normalised(_garment()))


def test_the_look_is_the_unit_projection_of_the_centred_grid():
    look = ShapeLook(64, 3)
    look.fit_floor(torch.tensor([0.5]))
    g = torch.Generator().manual_seed(0)
    look.fit(torch.randn(20, GRID * GRID, generator=g))
    images = _normalised(torch.rand(2, 3, 64, 64, generator=g))
    projected = (look.grid(images) - look.mean) @ look.basis
    expected = projected / projected.norm(dim=1, keepdim=True)
    torch.testing.assert_close(look(images), expected)


def _model(look_dim: int, kind: str = LOOK_KINDS[0], look_head: int = 256) -> JointModel:
    torch.manual_seed(0)
    config = ModelConfig(
        embed_dim=8, image_size=32, look_dim=look_dim, look_kind=kind, look_head=look_head
    )
    model = JointModel(config, vocab_size=3)
    if model.look is not None:
        images = torch.randn(10, 3, 32, 32)
        if kind in FLOOR_KINDS:
            model.look.fit_floor(model.look.tones(images))
        model.look.fit(model.look.grid(images))
    return model.eval()


def test_index_vectors_join_the_two_unit_parts_with_equal_weight():
    model = _model(4)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        vec = model.encode_index(images)
        f = torch.nn.functional.normalize(model.encode_images(images), dim=-1)
        lk = model.look(images)
    assert model.index_dim == 12 and vec.shape == (3, 12)
    torch.testing.assert_close(vec[:, :8], f / math.sqrt(2))
    torch.testing.assert_close(vec[:, 8:], lk / math.sqrt(2))


def test_without_a_look_the_index_vector_is_the_unit_f_i():
    model = _model(0)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            model.encode_index(images), model.encode_images(images, normalize=True)
        )
    assert model.look is None and model.index_dim == 8


def test_with_look_by_hand():
    q, look = np.array([3.0, 0.0]), np.array([0.0, 2.0])
    # a = 0.5: [0.5, 0, 0, 0.5] normalised
    np.testing.assert_allclose(with_look(q, look, 0.5, 2), [2**-0.5, 0, 0, 2**-0.5], atol=1e-7)
    # a = 0.75: [0.25, 0, 0, 0.75] / sqrt(0.625)
    s = math.sqrt(0.25**2 + 0.75**2)
    np.testing.assert_allclose(with_look(q, look, 0.75, 2), [0.25 / s, 0, 0, 0.75 / s], atol=1e-7)
    # no image (text), a zero look or a = 0: the joint part alone
    for args in ((None, 0.5), (np.zeros(2), 0.5), (look, 0.0)):
        np.testing.assert_allclose(with_look(q, args[0], args[1], 2), [1, 0, 0, 0])
    with pytest.raises(ValueError, match="3 dimensions"):
        with_look(q, np.ones(3), 0.5, 2)


def _loaded_without(model: JointModel, folder, *keys: str) -> JointModel:  # noqa: ANN001
    """``model`` saved in ``folder``, its config.json's ``model`` table stripped of ``keys``
    (what a folder of an older release holds), then loaded."""
    vocab = Vocabulary(["red", "dress", "blue"], [12, 11, 10], n_items=100, min_count=2)
    save_model(model, folder, vocab=vocab, text_config=None)
    config = folder / "config.json"
    meta = json.loads(config.read_text())
    for key in keys:
        del meta["model"][key]
    config.write_text(json.dumps(meta))
    return load_model(folder)


def test_a_model_folder_saved_before_the_look_loads_without_one(tmp_path):
    loaded = _loaded_without(_model(0), tmp_path / "m", "look_dim", "look_kind", "look_head")
    assert loaded.look is None


def test_a_model_folder_saved_before_the_look_kinds_reads_the_luminance(tmp_path):
    assert _model(4).look.kind == "pixel-shading"  # the default
    # whose weights are those of a folder of that release
    model = _model(4, "luminance", look_head=0)
    assert _loaded_without(model, tmp_path / "m", "look_kind", "look_head").look.kind == "luminance"


def test_a_model_folder_saved_before_the_look_head_loads_without_one(tmp_path):
    loaded = _loaded_without(_model(4, look_head=0), tmp_path / "m", "look_head")
    assert loaded.look is not None and loaded.look_head is None


def test_a_fitted_look_survives_save_and_load(tmp_path):
    model = _model(4)
    vocab = Vocabulary(["red", "dress", "blue"], [12, 11, 10], n_items=100, min_count=2)
    save_model(model, tmp_path / "m", vocab=vocab, text_config=None)
    loaded = load_model(tmp_path / "m")
    assert float(loaded.look.floor) == float(model.look.floor) > 0
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_index(images), model.encode_index(images))


def test_a_silhouette_model_folder_loads_without_a_shading_floor(tmp_path):
    # a folder saved before the "shading" kind: its weights have no look.floor
    model = _model(4, "silhouette")
    assert "look.floor" not in model.state_dict()
    vocab = Vocabulary(["red", "dress", "blue"], [12, 11, 10], n_items=100, min_count=2)
    save_model(model, tmp_path / "m", vocab=vocab, text_config=None)
    loaded = load_model(tmp_path / "m")
    assert loaded.look.kind == "silhouette" and not hasattr(loaded.look, "floor")
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_index(images), model.encode_index(images))


def test_every_kind_has_a_version_that_a_saved_folder_reports(tmp_path):
    assert set(LOOK_VERSIONS) == set(LOOK_KINDS)
    assert ShapeLook(32, 4, "shading").version == LOOK_VERSIONS["shading"]
    vocab = Vocabulary(["red", "dress", "blue"], [12, 11, 10], n_items=100, min_count=2)
    save_model(_model(4), tmp_path / "m", vocab=vocab, text_config=None)
    assert current_look_version(tmp_path / "m") == LOOK_VERSIONS["pixel-shading"]
    save_model(_model(0), tmp_path / "none", vocab=vocab, text_config=None)
    assert current_look_version(tmp_path / "none") is None
    _loaded_without(_model(4, "luminance", look_head=0), tmp_path / "old", "look_kind", "look_head")
    assert current_look_version(tmp_path / "old") == LOOK_VERSIONS["luminance"]


@pytest.mark.parametrize("saved", [None, LOOK_VERSIONS["pixel-shading"] - 1])
def test_a_folder_whose_look_was_fitted_at_another_version_loads_with_a_warning(tmp_path, saved):
    vocab = Vocabulary(["red", "dress", "blue"], [12, 11, 10], n_items=100, min_count=2)
    model = _model(4)
    save_model(model, tmp_path / "m", vocab=vocab, text_config=None)
    config = tmp_path / "m" / "config.json"
    meta = json.loads(config.read_text())
    assert meta["look_version"] == LOOK_VERSIONS["pixel-shading"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # today's folder: no warning
        load_model(tmp_path / "m")
    config.write_text(json.dumps({**meta, "look_version": saved}))
    read = "before looks had versions" if saved is None else f"at version {saved}"
    today = LOOK_VERSIONS["pixel-shading"]
    with pytest.warns(UserWarning, match=f"grids read {read}.*version {today}. Search works"):
        loaded = load_model(tmp_path / "m")
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_index(images), model.encode_index(images))
