"""The image-pretraining set of the embedded study: Fashion-MNIST train images as pictures.

On EK100 the 2D model starts from ImageNet weights. On the embedded dataset the stand-in
is a 2D model trained to name Fashion-MNIST items drawn in the videos' style
(`synth.render_still`: tinted, scaled, on textured backgrounds) from the **train** split,
while the videos use only **t10k** images: pretraining never sees a video's items.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .fashion_mnist import CLASSES, load_fashion_mnist
from .hooks import EpochDataset
from .synth import render_still
from .transforms import IMAGENET_MEAN, IMAGENET_STD


class FashionImages(EpochDataset):
    """Yields {"image": C x H x W float, "label": int, "narration_id": "fashion-<split>-<i>"}.

    Each image is rendered from a generator seeded by (seed, epoch, index) in training (a
    new background and placement every epoch) and by (seed, index) in evaluation.

    `views=N` renders N drawings of every image once, on first use, and training epoch e
    shows drawing e mod N (evaluation: the first): rendering costs about 0.7 ms an image, as
    much as a third of a 64 x 64 training step of the 2D B0, so re-rendering every epoch would
    cost a third of the pretraining. The drawings are the same function of (seed, view, index)
    as the per-epoch ones of epochs 0 .. N-1.
    """

    classes = CLASSES

    def __init__(self, split: str = "train", *, size: int = 64, train: bool = True, seed: int = 0,
                 indices: Optional[Sequence[int]] = None, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, views: Optional[int] = None):
        if size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {size}")
        self.images, self.labels = load_fashion_mnist(split)
        self.split = split
        self.indices = np.arange(len(self.labels)) if indices is None else np.asarray(indices)
        self.size, self.train, self.seed, self.epoch = size, train, seed, 0
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
        if views is not None and views < 1:
            raise ValueError(f"views must be at least 1, got {views}")
        self.views = views
        self._drawings: Optional[np.ndarray] = None  # len x views x H x W x 3 uint8, rendered on first use

    def __len__(self) -> int:
        return len(self.indices)

    def _draw(self, i: int, epoch: int) -> np.ndarray:
        j = int(self.indices[i])
        return render_still(self.images[j], np.random.default_rng([self.seed, epoch, j]), self.size)

    def __getitem__(self, i: int) -> dict:
        j = int(self.indices[i])
        epoch = self.epoch if self.train else 0
        if self.views is None:
            picture = torch.from_numpy(self._draw(i, epoch))
        else:
            if self._drawings is None:
                self._drawings = np.stack([np.stack([self._draw(k, v) for v in range(self.views)])
                                           for k in range(len(self))])
            picture = torch.from_numpy(self._drawings[i, epoch % self.views if self.train else 0])
        image = (picture.permute(2, 0, 1).float() / 255 - self.mean) / self.std
        return {"image": image, "label": int(self.labels[j]), "narration_id": f"fashion-{self.split}-{j}"}
