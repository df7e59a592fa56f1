"""Fashion-MNIST (Xiao et al. 2017) as plain numpy arrays: the real images of the synthetic set.

Two roles in the study, kept apart by split:

* the **t10k** split (10,000 images) supplies the objects ("nouns") drawn into the synthetic
  videos of `evitvid.data.synth`;
* the **train** split (60,000 images) is the image-pretraining set, the stand-in for
  ImageNet on which the 2D model is pretrained before inflation.

No image is in both, so pretraining never sees a video's objects.

Where the files come from, in order: an explicit `root`, the `EVITVID_FASHION_MNIST`
environment variable, Debian's `dataset-fashion-mnist` package
(`/usr/share/datasets/fashion-mnist`), a previous torchvision download in the user's cache
(`$XDG_CACHE_HOME/evitvid/fashion-mnist`, by default `~/.cache/...`), and, last,
torchvision's `FashionMNIST(download=True)` into that cache where there is internet. The idx
files are read with gzip + numpy; torchvision is needed only to download.
"""
from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

__all__ = [
    "CLASSES",
    "SPLITS",
    "DEBIAN_DIR",
    "load_fashion_mnist",
    "find_fashion_mnist",
    "read_idx",
]

# Label order of the official dataset (zalandoresearch/fashion-mnist README).
CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
SPLITS: tuple[str, ...] = ("train", "t10k")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "EVITVID_FASHION_MNIST"
_ALIASES = {"train": "train", "t10k": "t10k", "test": "t10k"}
_SIZES = {"train": 60000, "t10k": 10000}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _cache_dir() -> Path:
    # The user's cache, as torchvision and the Hugging Face hub keep theirs: the library never
    # writes into the folder it is installed in.
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "evitvid" / "fashion-mnist"


def read_idx(path: str | Path) -> np.ndarray:
    """Read one idx file (`*-ubyte` or `*-ubyte.gz`) into an array of its declared shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an idx file (magic {data[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) != header + count * dtype.itemsize:
        raise ValueError(f"{path}: idx header says shape {shape} ({header + count * dtype.itemsize} bytes), "
                         f"file has {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)


def _split_name(split: str) -> str:
    try:
        return _ALIASES[split]
    except KeyError:
        raise ValueError(f"unknown Fashion-MNIST split {split!r}; expected one of {SPLITS}") from None


def _files_in(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{split}-{kind}-ubyte"
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            return None
    return found[0], found[1]


def _candidate_dirs(root: str | Path | None) -> list[Path]:
    if root is not None:
        return [Path(root), Path(root) / "FashionMNIST" / "raw"]
    dirs = []
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]))
    dirs += [DEBIAN_DIR, _cache_dir() / "FashionMNIST" / "raw"]
    return dirs


def find_fashion_mnist(split: str, root: str | Path | None = None) -> tuple[Path, Path] | None:
    """The (images, labels) idx files of `split` on this machine, or None (never downloads)."""
    split = _split_name(split)
    for folder in _candidate_dirs(root):
        files = _files_in(folder, split)
        if files is not None:
            return files
    return None


def _download(split: str) -> tuple[Path, Path]:
    from torchvision.datasets import FashionMNIST  # only here: the package does not need torchvision

    FashionMNIST(root=str(_cache_dir()), train=(split == "train"), download=True)
    files = _files_in(_cache_dir() / "FashionMNIST" / "raw", split)
    if files is None:
        raise FileNotFoundError(f"torchvision reported success but no idx files under {_cache_dir()}")
    return files


@functools.lru_cache(maxsize=4)
def _load(split: str, root: str | None, download: bool) -> tuple[np.ndarray, np.ndarray]:
    files = find_fashion_mnist(split, root)
    if files is None and root is None and download:
        try:
            files = _download(split)
        except Exception as err:  # no internet, no torchvision, a mirror down: say all of it
            raise FileNotFoundError(_missing_message(split, root, f"torchvision download failed: {err!r}")) from err
    if files is None:
        raise FileNotFoundError(_missing_message(split, root, "download not attempted"))
    images, labels = (read_idx(p) for p in files)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise ValueError(f"{files}: unexpected shapes {images.shape} and {labels.shape}")
    if images.shape[0] != _SIZES[split]:
        raise ValueError(f"{files[0]}: {images.shape[0]} images, Fashion-MNIST {split} has {_SIZES[split]}")
    if labels.min() < 0 or labels.max() >= len(CLASSES):
        raise ValueError(f"{files[1]}: labels outside 0..{len(CLASSES) - 1}")
    images, labels = images.copy(), labels.astype(np.int64)
    images.flags.writeable = False  # cached and shared between callers
    labels.flags.writeable = False
    return images, labels


def _missing_message(split: str, root: str | None, why: str) -> str:
    looked = ", ".join(str(d) for d in _candidate_dirs(root))
    return (f"Fashion-MNIST {split!r} split not found (looked in: {looked}). Install Debian's package "
            f"`dataset-fashion-mnist` (apt-get install dataset-fashion-mnist, files in {DEBIAN_DIR}), or let "
            f"torchvision download it with internet access (FashionMNIST(download=True) into "
            f"{_cache_dir()}); {why}.")


def load_fashion_mnist(split: str = "train", *, root: str | Path | None = None,
                       download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST `split` ("train" or "t10k"; "test" is an alias of "t10k").

    Returns `(images, labels)`: uint8 `N x 28 x 28` (white object on black) and int64 `N`
    labels indexing `CLASSES`. The arrays are read-only and cached per process; copy before
    editing. With `root`, only that folder (or its `FashionMNIST/raw`) is searched and nothing
    is downloaded. Raises `FileNotFoundError` naming both sources when neither has the data.
    """
    return _load(_split_name(split), None if root is None else str(root), download)
