"""The image-pretraining set: Fashion-MNIST train items in the videos' style."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evitvid.data import fashion_mnist
from evitvid.data.images import FashionImages
from evitvid.data.synth import NOUNS, PRETRAINING_LABELS, render_still


def test_images_are_deterministic_per_index_and_new_each_training_epoch():
    train = FashionImages("train", size=32, train=True, seed=3, indices=np.arange(10))
    a = train[4]["image"]
    assert torch.equal(a, train[4]["image"])
    train.set_epoch(1)
    assert not torch.equal(a, train[4]["image"])
    evaluation = FashionImages("train", size=32, train=False, seed=3, indices=np.arange(10))
    b = evaluation[4]["image"]
    evaluation.set_epoch(1)
    assert torch.equal(b, evaluation[4]["image"])
    assert a.shape == (3, 32, 32) and train[4]["label"] == int(train.labels[4])
    assert train[4]["narration_id"] == f"fashion-train-{train.files[4]}"


def test_render_still_draws_the_item_over_a_background():
    item = np.zeros((28, 28), np.uint8)
    item[4:24, 8:20] = 255
    still = render_still(item, np.random.default_rng(0), 64)
    assert still.shape == (64, 64, 3) and still.dtype == np.uint8
    empty = render_still(np.zeros((28, 28), np.uint8), np.random.default_rng(0), 64)
    changed = np.abs(still.astype(int) - empty.astype(int)).sum(-1) > 30
    assert 100 < changed.sum() < 64 * 64 / 2  # the item covers part of the picture, not all of it


def test_cached_views_are_the_per_epoch_drawings():
    live = FashionImages("train", size=32, train=True, seed=3, indices=np.arange(6))
    cached = FashionImages("train", size=32, train=True, seed=3, indices=np.arange(6), views=2)
    for epoch in (0, 1, 2):
        live.set_epoch(epoch % 2)
        cached.set_epoch(epoch)
        for i in range(6):
            assert torch.equal(cached[i]["image"], live[i]["image"])  # epoch 2 shows the first drawing again
    with pytest.raises(ValueError, match="views"):
        FashionImages("train", size=32, views=0)


def test_a_smaller_window_keeps_the_videos_item_size():
    """`scale`: a 48-pixel picture drawn at a 64-pixel frame's scale shows the item as large as the
    64-pixel picture does (the same draws) on less background; default `scale` is `size`."""
    item = np.zeros((28, 28), np.uint8)
    item[2:26, 2:26] = 255  # a square filling the item's 28 pixels
    blank = np.zeros((28, 28), np.uint8)

    def covered(size, scale, seed):
        a = render_still(item, np.random.default_rng(seed), size, scale).astype(int)
        b = render_still(blank, np.random.default_rng(seed), size, scale).astype(int)
        return (np.abs(a - b).sum(-1) > 30).sum()

    for seed in range(8):
        full, window, small = covered(64, 64, seed), covered(48, 64, seed), covered(48, 48, seed)
        assert abs(window - full) <= 0.05 * full  # the same item area in pixels, not cut by the window
        assert small < 0.75 * full  # where a 48-pixel frame's scale draws it smaller
    assert np.array_equal(render_still(item, np.random.default_rng(1), 64),
                          render_still(item, np.random.default_rng(1), 64, 64))
    images = FashionImages("train", size=48, scale=64, train=False, indices=np.arange(3))
    assert images[0]["image"].shape == (3, 48, 48)
    with pytest.raises(ValueError, match="scale"):
        FashionImages("train", size=48, scale=32)
    with pytest.raises(ValueError, match="scale"):
        render_still(item, np.random.default_rng(0), 64, 48)


def test_rendering_in_worker_processes_gives_the_same_drawings():
    indices = np.arange(20, 45)
    serial = FashionImages("train", size=32, scale=40, train=True, seed=5, indices=indices, views=2)
    serial.render(workers=1)
    pooled = FashionImages("train", size=32, scale=40, train=True, seed=5, indices=indices, views=2)
    pooled.render(workers=2)
    assert serial._drawings.shape == (25, 2, 32, 32, 3)
    assert np.array_equal(serial._drawings, pooled._drawings)
    live = FashionImages("train", size=32, scale=40, train=True, seed=5, indices=indices)
    live.set_epoch(1)
    pooled.set_epoch(1)
    assert torch.equal(pooled[7]["image"], live[7]["image"])  # view 1 is epoch 1's drawing


def test_pretraining_names_no_noun():
    """The stand-in for ImageNet is not supervised noun training: its classes are the five
    Fashion-MNIST classes no noun of the videos is, and the set yields only their images."""
    nouns = {n.fashion_label for n in NOUNS}
    assert len(NOUNS) == 5 and not nouns & set(PRETRAINING_LABELS)
    assert sorted(nouns | set(PRETRAINING_LABELS)) == list(range(len(fashion_mnist.CLASSES)))
    assert FashionImages.classes == ("Pullover", "Coat", "Sandal", "Shirt", "Ankle boot")
    images = FashionImages("train", size=16)
    _, file_labels = fashion_mnist.load_fashion_mnist("train")
    assert len(images) == 6000 * len(PRETRAINING_LABELS)  # every image of those classes (6,000 each)
    assert set(file_labels[images.files].tolist()) == set(PRETRAINING_LABELS)
    assert np.array_equal(np.asarray(PRETRAINING_LABELS)[images.labels], file_labels[images.files])
    sample = FashionImages("train", size=16, indices=np.arange(0, len(images), 997))
    for i in range(len(sample)):
        item = sample[i]
        j = int(item["narration_id"].rsplit("-", 1)[1])
        assert file_labels[j] == PRETRAINING_LABELS[item["label"]] and file_labels[j] not in nouns
    with pytest.raises(ValueError, match="indices"):
        FashionImages("train", size=16, indices=[len(images)])
