"""Tests for evitvid.data.fashion_mnist: the idx reader, the sources, the two splits."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from evitvid.data import fashion_mnist as fm


def _write_idx(path, array: np.ndarray, compress: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


def _rows(images: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in images.reshape(len(images), -1)}


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("x-ubyte.gz" if compress else "x-ubyte")
    _write_idx(path, array, compress)
    out = fm.read_idx(path)
    assert out.dtype == np.uint8 and np.array_equal(out, array)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an idx file"):
        fm.read_idx(bad)
    short = tmp_path / "short-ubyte"
    short.write_bytes(struct.pack(">BBBBI", 0, 0, 0x08, 1, 10) + b"\x00" * 5)
    with pytest.raises(ValueError, match="10 bytes|bytes"):
        fm.read_idx(short)


def test_splits_shapes_and_labels():
    for split, n in (("train", 60000), ("t10k", 10000)):
        images, labels = fm.load_fashion_mnist(split)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64
        # Fashion-MNIST is balanced: every class has a tenth of the split.
        assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10
        assert not images.flags.writeable  # the cache is shared; callers must copy
    assert len(fm.CLASSES) == 10 and fm.CLASSES[0] == "T-shirt/top" and fm.CLASSES[9] == "Ankle boot"


def test_test_is_an_alias_of_t10k_and_unknown_splits_raise():
    assert fm.load_fashion_mnist("test")[0] is fm.load_fashion_mnist("t10k")[0]
    with pytest.raises(ValueError, match="unknown Fashion-MNIST split"):
        fm.load_fashion_mnist("validation")


def test_train_and_t10k_share_no_image():
    # The synthetic videos use t10k, image pretraining uses train: no image may be in both.
    train, _ = fm.load_fashion_mnist("train")
    t10k, _ = fm.load_fashion_mnist("t10k")
    assert not (_rows(train) & _rows(t10k))


def test_explicit_root_is_used(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10000, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10, dtype=np.uint8), 1000)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, compress=False)  # torchvision leaves them unzipped
    out_images, out_labels = fm.load_fashion_mnist("t10k", root=tmp_path)
    assert np.array_equal(out_images, images) and np.array_equal(out_labels, labels)


def test_wrong_size_is_rejected(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="10000"):
        fm.load_fashion_mnist("t10k", root=tmp_path)


def test_missing_data_names_both_sources(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        fm.load_fashion_mnist("train", root=tmp_path)
    message = str(info.value)
    assert "dataset-fashion-mnist" in message and "torchvision" in message and str(tmp_path) in message
