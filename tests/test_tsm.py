"""TSM's temporal shift (`temporal_shift`, Lin, Gan and Han, ICCV 2019) on hand-built tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evitvid.models.efficientvit import temporal_shift


def _clip_tensor(frames: int, channels: int, clips: int = 1) -> torch.Tensor:
    """(clips * frames) x channels x 1 x 1, value 100 * clip + 10 * frame + channel + 1 (never 0)."""
    c, t, ch = np.meshgrid(np.arange(clips), np.arange(frames), np.arange(channels), indexing="ij")
    return torch.tensor(100 * c + 10 * t + ch + 1, dtype=torch.float32).reshape(clips * frames, channels, 1, 1)


def test_shift_moves_one_fold_back_and_one_forward_with_zeros_at_the_ends():
    x = _clip_tensor(frames=3, channels=4)  # frame t, channel c: 10 t + c + 1
    got = temporal_shift(x, frames=3, fold=1)[:, :, 0, 0]
    # channel 0 from the next frame, channel 1 from the previous one, channels 2 and 3 stay
    want = torch.tensor([[11., 0., 3., 4.],
                         [21., 2., 13., 14.],
                         [0., 12., 23., 24.]])
    assert torch.equal(got, want)
    assert torch.equal(x[:, :, 0, 0], torch.tensor([[1., 2., 3., 4.], [11., 12., 13., 14.], [21., 22., 23., 24.]]))


def test_shift_keeps_clips_apart():
    x = _clip_tensor(frames=2, channels=4, clips=2)  # clip 1 is rows 2 and 3
    got = temporal_shift(x, frames=2, fold=1)[:, :, 0, 0]
    want = torch.tensor([[11., 0., 3., 4.],
                         [0., 2., 13., 14.],
                         [111., 0., 103., 104.],  # not clip 0's last frame
                         [0., 102., 113., 114.]])
    assert torch.equal(got, want)


def test_shift_of_one_frame_zeroes_both_folds():
    x = _clip_tensor(frames=1, channels=6, clips=3)
    got = temporal_shift(x, frames=1, fold=2)
    assert torch.equal(got[:, :4], torch.zeros_like(got[:, :4]))
    assert torch.equal(got[:, 4:], x[:, 4:])


def test_shift_keeps_channels_last_and_its_gradient_is_the_reverse_shift():
    x = torch.randn(2 * 3, 8, 5, 4)
    cl = x.contiguous(memory_format=torch.channels_last)
    got = temporal_shift(cl, frames=3, fold=2)
    assert got.is_contiguous(memory_format=torch.channels_last) and not got.is_contiguous()
    assert torch.equal(got, temporal_shift(x, frames=3, fold=2))
    assert temporal_shift(x, frames=3, fold=0) is x
    xd = torch.randn(2 * 3, 8, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: temporal_shift(t, 3, 2), (xd,))


@pytest.mark.parametrize("frames, fold, match", [(4, 1, "divide the batch"), (0, 1, "positive"),
                                                 (3, 5, "fold=5")])
def test_shift_refuses_what_it_cannot_do(frames, fold, match):
    with pytest.raises(ValueError, match=match):
        temporal_shift(torch.zeros(6, 8, 2, 2), frames=frames, fold=fold)
