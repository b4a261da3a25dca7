"""Transforms, PairDataset / ImageDataset and their collate functions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from stylesearch.catalog.dataset import (
    PAD,
    EpochSampler,
    ImageDataset,
    PairDataset,
    collate_images,
    collate_pairs,
)
from stylesearch.catalog.images import ImageError
from stylesearch.catalog.manifest import CatalogItem
from stylesearch.catalog.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_transform,
    same_item_transform,
    train_transform,
)

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def _unnormalise(tensor: torch.Tensor) -> torch.Tensor:
    return tensor * STD + MEAN


@pytest.fixture
def items(tmp_path: Path) -> list[CatalogItem]:
    colours = [(220, 20, 20), (20, 200, 20), (20, 20, 220)]
    out = []
    for k, colour in enumerate(colours):
        main = tmp_path / f"{k}.png"
        Image.new("RGB", (50, 40), colour).save(main)
        extra = tmp_path / f"{k}-b.png"
        Image.new("RGB", (40, 50), (255 - colour[0], 255 - colour[1], 255 - colour[2])).save(extra)
        out.append(CatalogItem(id=f"i{k}", image=main, title="t", extra_images=(extra,)))
    return out


@pytest.mark.parametrize("make", [train_transform, eval_transform, same_item_transform])
@pytest.mark.parametrize("size", [(50, 30), (30, 70), (16, 16)])
def test_transform_output_shape_and_dtype(make, size: tuple[int, int]) -> None:  # noqa: ANN001
    out = make(24)(Image.new("RGB", size, (10, 120, 240)))
    assert out.shape == (3, 24, 24) and out.dtype == torch.float32


def test_eval_transform_is_deterministic_and_normalised() -> None:
    image = Image.new("RGB", (64, 48), (255, 0, 0))
    first, second = eval_transform(32)(image), eval_transform(32)(image)
    assert torch.equal(first, second)
    expected = (torch.tensor([1.0, 0.0, 0.0]) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(
        IMAGENET_STD
    )
    assert torch.allclose(first[:, 16, 16], expected, atol=1e-5)


@pytest.mark.parametrize(
    "colour", [(230, 20, 20), (20, 180, 30), (30, 40, 210), (240, 200, 30), (130, 50, 160)]
)
def test_train_transform_never_changes_the_hue(colour: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    transform = train_transform(32)
    image = Image.new("RGB", (48, 40), colour)
    order = sorted(range(3), key=lambda c: colour[c])  # channel order, least to most intense
    for _ in range(30):
        pixels = _unnormalise(transform(image)).reshape(3, -1)
        # each pixel keeps the channel ordering of the original colour (hue family unchanged)
        assert torch.all(pixels[order[2]] >= pixels[order[1]] - 1e-4)
        assert torch.all(pixels[order[1]] >= pixels[order[0]] - 1e-4)
        dominant = pixels[order[2]] - pixels[order[1]]
        assert torch.all(dominant > 0.15 * (colour[order[2]] - colour[order[1]]) / 255)


def test_train_transform_augments() -> None:
    torch.manual_seed(0)
    image = Image.linear_gradient("L").convert("RGB").resize((64, 64))
    outs = [train_transform(32)(image) for _ in range(4)]
    assert not all(torch.equal(outs[0], other) for other in outs[1:])


def test_bad_image_size() -> None:
    with pytest.raises(ValueError, match="image_size"):
        eval_transform(0)


def test_pair_dataset_sample(items: list[CatalogItem]) -> None:
    dataset = PairDataset(items, [[3, 1], [], [5]], eval_transform(16))
    assert len(dataset) == 3
    sample = dataset[0]
    assert sample["image"].shape == (3, 16, 16) and sample["image"].dtype == torch.float32
    assert sample["words"].dtype == torch.int64 and sample["words"].tolist() == [3, 1]
    assert dataset[1]["words"].shape == (0,)
    assert sample["index"] == 0
    red = _unnormalise(sample["image"])[:, 8, 8]
    assert red[0] > 0.8 and red[1] < 0.2  # main image used when use_extra_images is False


def test_pair_dataset_extra_images_are_deterministic(items: list[CatalogItem]) -> None:
    bags = [[0]] * 3

    def draws(seed: int, epochs: range) -> list[list[Path]]:
        dataset = PairDataset(items, bags, eval_transform(8), use_extra_images=True, seed=seed)
        out = []
        for epoch in epochs:
            dataset.set_epoch(epoch)
            out.append([dataset.image_path(i) for i in range(3)])
        return out

    first = draws(0, range(12))
    assert first == draws(0, range(12))
    assert first != draws(1, range(12))
    for index, item in enumerate(items):  # uniform over (image, *extra): both views show up
        assert {epoch[index] for epoch in first} == set(item.all_images)
    dataset = PairDataset(items, bags, eval_transform(8), use_extra_images=True)
    dataset.set_epoch(3)
    sample = dataset[1]
    expected = eval_transform(8)(Image.open(dataset.image_path(1)).convert("RGB"))
    assert torch.equal(sample["image"], expected)


def test_pair_dataset_checks_lengths(items: list[CatalogItem]) -> None:
    with pytest.raises(ValueError, match="3 items but 2 bags"):
        PairDataset(items, [[1], [2]], eval_transform(8))


def test_collate_pairs_pads_with_pad() -> None:
    batch = [
        {"image": torch.zeros(3, 4, 4), "words": torch.tensor([7, 8, 9]), "index": 5},
        {"image": torch.ones(3, 4, 4), "words": torch.tensor([], dtype=torch.long), "index": 2},
        {"image": torch.ones(3, 4, 4), "words": torch.tensor([4]), "index": 0},
    ]
    out = collate_pairs(batch)
    assert out["images"].shape == (3, 3, 4, 4) and out["images"].dtype == torch.float32
    assert out["words"].dtype == torch.int64
    assert out["words"].tolist() == [[7, 8, 9], [PAD, PAD, PAD], [4, PAD, PAD]]
    assert out["index"].tolist() == [5, 2, 0] and out["index"].dtype == torch.int64
    empty = collate_pairs([{**batch[1]}, {**batch[1]}])
    assert empty["words"].tolist() == [[PAD], [PAD]]
    assert PAD == -1


def test_dataloader_end_to_end(items: list[CatalogItem]) -> None:
    dataset = PairDataset(items, [[1, 2], [3], []], train_transform(16))
    batch = next(iter(DataLoader(dataset, batch_size=3, collate_fn=collate_pairs)))
    assert batch["images"].shape == (3, 3, 16, 16)
    assert batch["words"].tolist() == [[1, 2], [3, PAD], [PAD, PAD]]

    images = ImageDataset([item.image for item in items], eval_transform(16))
    loaded = next(iter(DataLoader(images, batch_size=2, collate_fn=collate_images)))
    assert loaded["images"].shape == (2, 3, 16, 16) and loaded["index"].tolist() == [0, 1]
    assert len(images) == 3 and images[2]["index"] == 2


def test_unreadable_image_at_training_time(tmp_path: Path, items: list[CatalogItem]) -> None:
    items[1].image.write_bytes(b"not a png any more")
    dataset = PairDataset(items, [[1], [2], [3]], eval_transform(8), max_pixels=10_000)
    with pytest.raises(ImageError, match=r"^item 'i1': not an image"):
        dataset[1]
    with pytest.raises(ImageError, match=r"^image 1: not an image"):
        ImageDataset([item.image for item in items], eval_transform(8))[1]
    with pytest.raises(ImageError, match="image too large"):
        PairDataset(items, [[1], [2], [3]], eval_transform(8), max_pixels=100)[0]


def test_epoch_sampler_pairs_every_index_with_its_epoch() -> None:
    sampler = EpochSampler(5, seed=3)
    sampler.set_epoch(2)
    pairs = list(sampler)
    assert len(sampler) == 5 and {e for e, _ in pairs} == {2}
    assert sorted(i for _, i in pairs) == list(range(5))
    assert pairs == list(sampler)  # the same epoch gives the same order
    orders = set()
    for epoch in range(6):
        sampler.set_epoch(epoch)
        orders.add(tuple(i for _, i in sampler))
    assert len(orders) > 1  # other epochs, other orders

    class Base:
        epochs: list[int] = []

        def set_epoch(self, epoch: int) -> None:
            self.epochs.append(epoch)

        def __iter__(self):
            return iter([4, 0])

        def __len__(self) -> int:
            return 2

    wrapped = EpochSampler(5, seed=3, base=Base())
    wrapped.set_epoch(7)
    assert list(wrapped) == [(7, 4), (7, 0)] and len(wrapped) == 2
    assert Base.epochs == [7]


def test_epoch_keyed_samples_do_not_depend_on_the_global_generator(
    items: list[CatalogItem],
) -> None:
    dataset = PairDataset(items, [[0]] * 3, train_transform(16), use_extra_images=True, seed=1)
    torch.manual_seed(0)
    first = dataset[(4, 1)]["image"]
    torch.manual_seed(99)
    state = torch.get_rng_state()
    again = dataset[(4, 1)]["image"]
    assert torch.equal(first, again)  # same epoch and index: the same crop, flip and jitter
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is untouched
    assert not torch.equal(first, dataset[(5, 1)]["image"])  # another epoch: another draw
    assert dataset[(4, 1)]["index"] == 1


def test_same_item_view_is_the_other_image_with_its_colours_scrambled(
    items: list[CatalogItem],
) -> None:
    dataset = PairDataset(
        items, [[0]] * 3, eval_transform(16), use_extra_images=True,
        second_transform=same_item_transform(16),
    )  # fmt: skip
    for epoch in range(4):
        for i, item in enumerate(items):
            first, second = dataset.image_path(i, epoch), dataset.second_path(i, epoch)
            assert {first, second} == set(item.all_images)  # two views: never the same one
    sample = dataset[(2, 0)]
    assert sample["image2"].shape == (3, 16, 16)
    assert torch.equal(sample["image2"], dataset[(2, 0)]["image2"])  # seeded like the first
    # a plain red image: the scrambled views come out in other colours, some of them grey
    red = Image.new("RGB", (16, 16), (220, 20, 20))
    transform = same_item_transform(16)
    torch.manual_seed(0)
    colours = {tuple(_unnormalise(transform(red))[:, 8, 8].mul(10).round().tolist())
               for _ in range(30)}  # fmt: skip
    assert len(colours) > 5
    assert any(c[0] == c[1] == c[2] for c in colours)
    batch = collate_pairs([dataset[(0, 0)], dataset[(0, 1)]])
    assert batch["images2"].shape == (2, 3, 16, 16)
    alone = [CatalogItem(id="one", image=items[0].image, title="t")]
    single = PairDataset(alone, [[0]], eval_transform(8), second_transform=eval_transform(8))
    assert torch.equal(single[0]["image"], single[0]["image2"])  # one image: the same file
