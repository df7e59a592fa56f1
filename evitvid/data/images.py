"""The image-pretraining set of the embedded study: Fashion-MNIST train images as pictures.

On EK100 the 2D model starts from ImageNet weights, whose classes are not EK100's nouns. On
the embedded dataset the stand-in is a 2D model trained to name Fashion-MNIST items drawn in
the videos' style (`synth.render_still`: tinted, scaled, on textured backgrounds), of the five
classes that are **not** nouns of the videos (`synth.vocabulary.PRETRAINING_LABELS`: pullover,
coat, sandal, shirt, ankle boot; the nouns are t-shirt, trouser, dress, sneaker, bag): related
items, as ImageNet's are to EK100's, but not the nouns, so pretraining is not supervised noun
training. Its images come from the **train** split, while the videos use only **t10k** images:
pretraining never sees a video's items either.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import torch

from .fashion_mnist import CLASSES, load_fashion_mnist
from .hooks import EpochDataset
from .synth import render_still
from .synth.vocabulary import PRETRAINING_LABELS
from .transforms import IMAGENET_MEAN, IMAGENET_STD


class FashionImages(EpochDataset):
    """Yields {"image": C x H x W float, "label": int, "narration_id": "fashion-<split>-<i>"}.

    The set is the `split`'s images of the pretraining classes (`PRETRAINING_LABELS`), in file
    order; `indices` are positions in it (default: all of them), `label` is the class's
    position in `classes` (label `PRETRAINING_LABELS[k]` is class k) and `<i>` the image's index
    in the split's file.

    Pictures are `size` pixels square; `scale` (default `size`) is the video frame size whose
    item and texture sizes they keep (`synth.render_still`): `size=48, scale=64` draws the
    items as large as in the study's 64-pixel clips, on a smaller window of background.

    Each image is rendered from a generator seeded by (seed, epoch, index) in training (a
    new background and placement every epoch) and by (seed, index) in evaluation.

    `views=N` renders N drawings of every image once, on first use (or in worker processes
    with `render`), and training epoch e shows drawing e mod N (evaluation: the first):
    rendering an image costs about a third of what a 64 x 64 training step of the 2D B0 spends
    on it, so re-rendering every epoch would cost about a third of the pretraining. The drawings
    are the same function of (seed, view, index) as the per-epoch ones of epochs 0 .. N-1,
    whoever renders them.
    """

    classes: tuple[str, ...] = tuple(CLASSES[label] for label in PRETRAINING_LABELS)

    def __init__(self, split: str = "train", *, size: int = 64, scale: Optional[int] = None, train: bool = True,
                 seed: int = 0, indices: Optional[Sequence[int]] = None, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, views: Optional[int] = None):
        if size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {size}")
        if scale is not None and scale < size:
            raise ValueError(f"scale must be at least size ({size} pixels), got {scale}")
        self.images, file_labels = load_fashion_mnist(split)
        self.split = split
        # The split's images of the pretraining classes, by index in the file, and their classes.
        self.files = np.flatnonzero(np.isin(file_labels, PRETRAINING_LABELS))
        self.labels = np.searchsorted(PRETRAINING_LABELS, file_labels[self.files])
        self.indices = np.arange(len(self.files)) if indices is None else np.asarray(indices)
        if len(self.indices) and not (0 <= self.indices.min() and self.indices.max() < len(self.files)):
            raise ValueError(f"indices must be positions in the {len(self.files)} {split} images of the "
                             f"pretraining classes, got {self.indices.min()}..{self.indices.max()}")
        self.size, self.scale, self.train, self.seed, self.epoch = size, scale or size, train, seed, 0
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
        if views is not None and views < 1:
            raise ValueError(f"views must be at least 1, got {views}")
        self.views = views
        self._drawings: Optional[np.ndarray] = None  # len x views x H x W x 3 uint8, rendered on first use

    def __len__(self) -> int:
        return len(self.indices)

    def _draw(self, i: int, epoch: int) -> np.ndarray:
        return _drawing(self.images, int(self.files[self.indices[i]]), self.seed, epoch, self.size, self.scale)

    def render(self, workers: Optional[int] = None) -> None:
        """Render the `views` drawings of every image now, in `workers` processes (default: one
        per available core; 1: in this process). The same bytes for any number of workers. A
        no-op without `views` or when they are rendered already."""
        if self.views is None or self._drawings is not None:
            return
        workers = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
        jobs = [(self.split, chunk, self.seed, self.views, self.size, self.scale)
                for chunk in np.array_split(self.files[self.indices], max(1, min(len(self), 8 * workers)))]
        if workers <= 1:
            parts = [_render_views(job) for job in jobs]
        else:
            import multiprocessing

            from ..workers import process_pool
            with process_pool(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                parts = list(pool.map(_render_views, jobs))
        self._drawings = np.concatenate(parts)

    def __getitem__(self, i: int) -> dict:
        k = int(self.indices[i])
        j = int(self.files[k])
        epoch = self.epoch if self.train else 0
        if self.views is None:
            picture = torch.from_numpy(self._draw(i, epoch))
        else:
            if self._drawings is None:
                self.render(workers=1)
            picture = torch.from_numpy(self._drawings[i, epoch % self.views if self.train else 0])
        image = (picture.permute(2, 0, 1).float() / 255 - self.mean) / self.std
        return {"image": image, "label": int(self.labels[k]), "narration_id": f"fashion-{self.split}-{j}"}


def _drawing(images: np.ndarray, j: int, seed: int, epoch: int, size: int, scale: int) -> np.ndarray:
    """Image `j` of the split's file as drawn for `epoch` (or view) under `seed`."""
    return render_still(images[j], np.random.default_rng([seed, epoch, j]), size, scale)


def _render_views(job: tuple) -> np.ndarray:
    """Every view of a chunk of images, by index in the split's file (a worker's share of
    `FashionImages.render`): len x views x H x W x 3."""
    split, indices, seed, views, size, scale = job
    images, _ = load_fashion_mnist(split)
    return np.stack([np.stack([_drawing(images, int(j), seed, v, size, scale) for v in range(views)])
                     for j in indices])
