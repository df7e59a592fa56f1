"""numba kernels for training the 3D model on a CPU, over channels-last tensors.

PyTorch's CPU kernels for the depthwise 3D convolution's gradients are far from what the
machine can do at the study's shapes (`python -m evitvid bench --only depthwise`). These
kernels do the same arithmetic with channels as the contiguous innermost axis, so every
inner loop runs over adjacent floats (`depthwise_weight_grad`, `depthwise_input_grad`; see
`evitvid.models.depthwise3d`).

Tried and left out: batch norm over channels-last clips the same way. Alone it ran 1.2-4x
faster than PyTorch's (fastest with 8 channels), but inside a training step it made the
step slower: numba's threads and torch's OpenMP threads are two pools, and each waits on
the other's spinning threads after every call.

Reductions are split into `SLICES` fixed slices of rows, each summed on its own and then in
order, so a result does not depend on the number of threads. The kernels compile on first
use (cached on disk by numba) and run on as many threads as torch's kernels
(`torch.get_num_threads()`). Where numba cannot be imported or compile, `available()` says
so once and the callers use PyTorch's kernels.
"""
from __future__ import annotations

import logging
import types
from typing import Optional

import numpy as np
import torch

__all__ = ["SLICES", "available", "get", "use_torch_threads", "channels_last_view"]

_log = logging.getLogger(__name__)

SLICES = 16
_kernels: Optional[types.SimpleNamespace] = None
_error: Optional[str] = None


def _build() -> types.SimpleNamespace:
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def depthwise_weight_grad(x, g, out, st, sh, sw, pt, ph, pw):  # pragma: no cover (compiled)
        # x: B x T x H x W x C input, g: B x To x Ho x Wo x C output gradient (channels last);
        # out: slices x KT x KH x KW x C, zero on entry; slice s sums rows s, s + slices, ...
        B, T, H, W, C = x.shape
        To, Ho, Wo = g.shape[1], g.shape[2], g.shape[3]
        slices, KT, KH, KW = out.shape[0], out.shape[1], out.shape[2], out.shape[3]
        rows = B * To
        for s in prange(slices):
            acc = out[s]
            for r in range(s, rows, slices):
                b = r // To
                t = r % To
                for i in range(KT):
                    ti = t * st + i - pt
                    if ti < 0 or ti >= T:
                        continue
                    for h in range(Ho):
                        for j in range(KH):
                            hi = h * sh + j - ph
                            if hi < 0 or hi >= H:
                                continue
                            for w in range(Wo):
                                gv = g[b, t, h, w]
                                for k in range(KW):
                                    wi = w * sw + k - pw
                                    if wi < 0 or wi >= W:
                                        continue
                                    xv = x[b, ti, hi, wi]
                                    a = acc[i, j, k]
                                    for c in range(C):
                                        a[c] += gv[c] * xv[c]

    @njit(parallel=True, cache=True)
    def depthwise_input_grad(g, w, dx, st, sh, sw, pt, ph, pw):  # pragma: no cover (compiled)
        # g: B x To x Ho x Wo x C output gradient, w: KT x KH x KW x C kernel, dx: B x T x H x W x C
        # (any contents: each row is zeroed first). Each input row (b, t) gathers from the output
        # positions and taps that read it, so rows are independent (no two threads write one element).
        B, T, H, W, C = dx.shape
        To, Ho, Wo = g.shape[1], g.shape[2], g.shape[3]
        KT, KH, KW = w.shape[0], w.shape[1], w.shape[2]
        for r in prange(B * T):
            b = r // T
            ti = r % T
            dx[b, ti] = 0.0
            for i in range(KT):
                tt = ti + pt - i
                if tt < 0 or tt % st != 0 or tt // st >= To:
                    continue
                t = tt // st
                for hi in range(H):
                    for j in range(KH):
                        hh = hi + ph - j
                        if hh < 0 or hh % sh != 0 or hh // sh >= Ho:
                            continue
                        h = hh // sh
                        for wi in range(W):
                            out = dx[b, ti, hi, wi]
                            for k in range(KW):
                                ww = wi + pw - k
                                if ww < 0 or ww % sw != 0 or ww // sw >= Wo:
                                    continue
                                gv = g[b, t, h, ww // sw]
                                wv = w[i, j, k]
                                for c in range(C):
                                    out[c] += gv[c] * wv[c]

    return types.SimpleNamespace(depthwise_weight_grad=depthwise_weight_grad,
                                 depthwise_input_grad=depthwise_input_grad)


def available() -> bool:
    """Whether the kernels can run here (numba imports and compiles)."""
    global _kernels, _error
    if _kernels is None and _error is None:
        try:
            _kernels = _build()
        except Exception as exc:  # numba missing or broken: PyTorch's kernels, said once
            _error = f"{type(exc).__name__}: {exc}"
            _log.warning("numba is not usable (%s); the 3D model trains with PyTorch's kernels only", _error)
    return _kernels is not None


def get() -> types.SimpleNamespace:
    if not available():
        raise RuntimeError(f"numba kernels are not available: {_error}")
    return _kernels


def use_torch_threads() -> None:
    """Run the kernels on as many threads as torch's."""
    import numba
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def channels_last_view(t: torch.Tensor) -> Optional[np.ndarray]:
    """B x C x T x H x W channels-last CPU tensor -> B x T x H x W x C array sharing its memory, else None."""
    if t.device.type != "cpu" or t.ndim != 5 or not t.is_contiguous(memory_format=torch.channels_last_3d):
        return None
    return t.detach().permute(0, 2, 3, 4, 1).numpy()
