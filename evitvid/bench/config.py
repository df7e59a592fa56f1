"""What a bench run measures: `BenchConfig`, the presets and `bench_config`, a preset with the
command's options.

Presets: `smoke` (B0 at tiny shapes, one repeat: every section runs, in seconds), `light`
(the study shape, few repeats, a subset of the models; the book's Performance chapter;
2 minutes on 2 cores with `--compile`) and `full` (everything; 26 minutes on 2 cores).

Rows independent of their order (`isolate`). glibc's malloc serves an allocation of 32 MiB or
more (the ceiling of its adaptive mmap threshold on 64-bit) with fresh pages, faulted in on
every pass, unless an earlier, larger row left a heap that large behind: a row with
activations that large times differently depending on what ran before it in the process
(at 224 x 224, by how much the heap grew). With `isolate="large"` (the default) every row
whose largest tensor can reach `LARGE_ROW_BYTES` (each section estimates it:
`sections.Section.largest_bytes`) runs alone in a fresh process
(`isolation.call_in_fresh_process`, the mechanism that measures peak memory); `"all"`
isolates every row and `"none"` none. Each row records `isolated`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Optional, Sequence

import torch

from .models import LAYOUTS

PAPER_SHAPE: tuple[int, ...] = (3, 16, 224, 224)
# The CPU inference time per frame the issue "Fast on CPU" sets as the goal for the 3D B1 at
# PAPER_SHAPE, batch 1, on 2 cores (the paper's figure); `report.headline` quotes evitvid's against it.
PAPER_MS_PER_FRAME = 11.0
# torchvision's documented inputs (weights meta and docs): R3D/R(2+1)D 16 x 112 x 112 crops;
# S3D 224 crops, at least 14 frames (evaluated on 128; 16 here to match the paper's clips);
# MViT-v2-S fixed at 16 x 224 x 224; Swin3D-T 224 crops of 32 frames.
TORCHVISION_INPUTS: dict[str, tuple[int, ...]] = {
    "r3d_18": (3, 16, 112, 112),
    "r2plus1d_18": (3, 16, 112, 112),
    "s3d": (3, 16, 224, 224),
    "mvit_v2_s": (3, 16, 224, 224),
    "swin3d_t": (3, 32, 224, 224),
}
# Under isolate="large", a row runs in a fresh process when its largest tensor can reach
# LARGE_ROW_BYTES: glibc's 32 MiB, the 64-bit ceiling of its mmap threshold (from there on an
# allocation is a fresh mapping unless the heap happens to be that large already).
LARGE_ROW_BYTES = 32 * 1024 ** 2
# A model's largest activation per input pixel (batch x frames x height x width), in floats, for
# the estimate of a model row's largest tensor: the widest of the models benched. Counted on the
# meta device: L1 32, B1 16, B0 8, R3D-18 16, S3D 16, MViT-v2-S 18, Swin3D-T 12 (R(2+1)D-18's 36
# reach 32 MiB from 233,017 pixels; it runs at 200,704 and 1,605,632). Model rows are large from
# 32 MiB / (32 x 4 bytes) = 262,144 pixels: the paper's clips, 8 frames or more at 224 x 224,
# 8 images at 224 x 224 and the study's 4 x 64 x 64 clips from batch 16.
MODEL_FLOATS_PER_PIXEL = 32
# the isolation rules (`BenchConfig.isolate`), as the results describe them
ISOLATE: dict[str, str] = {
    "large": f"a fresh process for each row whose largest tensor can reach {LARGE_ROW_BYTES // 1024 ** 2} MiB "
             f"(models: {MODEL_FLOATS_PER_PIXEL} floats per input pixel), the others in the bench's",
    "all": "a fresh process for each row",
    "none": "every row in the bench's process",
}

@dataclass(frozen=True)
class BenchConfig:
    """Everything a run measures. `bench_config()` gives the presets (smoke, light, full)."""

    preset: str = "light"
    threads: int = 2
    warmup: int = 1
    repeats: int = 5
    budget_s: float = 10.0  # stop repeating a call after this long (at least 3 samples if repeats >= 3)
    # (model key, input shape, batch sizes); keys are "evitvid:NAME", "timm-frames:NAME", "torchvision:NAME"
    inference: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()
    memory: bool = True
    memory_batches: tuple[int, ...] = (1,)
    timm_pairs: tuple[str, ...] = ("b1", "l1")
    timm_shapes: tuple[tuple[int, ...], ...] = ((8, 3, 64, 64),)  # full 2D input shapes, batch included
    frames: tuple[int, ...] = (1, 2, 4, 8, 16)
    frames_size: int = 64
    frames_models: tuple[str, ...] = ("efficientvit_b1_3d", "efficientvit_b1_frameavg")
    attn_frames: tuple[int, ...] = (1, 4, 16, 64)
    attn_tokens_per_frame: tuple[int, int] = (14, 14)  # B1 stage 3 at 224 x 224
    attn_heads: int = 16  # B1 stage 3: 128 channels / head dim 16 = 8 heads, x 2 for the 5x5 multi-scale branch
    attn_dim: int = 16
    attn_budget_gb: float = 8.0
    train: tuple[tuple[str, tuple[int, ...], int], ...] = ()  # (model, shape, batch)
    channels_last: tuple[tuple[str, tuple[int, ...], int], ...] = ()  # (model, shape, batch)
    compile: tuple[tuple[str, tuple[int, ...], int], ...] = ()  # (model, shape, batch)
    onnx: tuple[tuple[str, tuple[int, ...], int], ...] = ()  # (model, shape, batch)
    # ((model keys...), shape, batch): each group's models through every inference backend, round-robin
    backends: tuple[tuple[tuple[str, ...], tuple[int, ...], int], ...] = ()
    # 3D depthwise convolutions (channels, spatial kernel, frames, height = width, batch): forward and
    # backward through PyTorch's kernels against evitvid's Conv3d (input gradient by a forward conv)
    depthwise: tuple[tuple[int, int, int, int, int], ...] = ()
    matmul_n: int = 2048
    # every model's convolutions and input, in every section: "channels_last" (what evitvid's
    # trainer and evaluation use on CPU) or "contiguous"; the channels-last section compares both
    layout: str = "channels_last"
    # which rows run each in a fresh process: "large" (largest tensor LARGE_ROW_BYTES or more), "all", "none"
    isolate: str = "large"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.isolate not in ISOLATE:
            raise ValueError(f"isolate must be one of {tuple(ISOLATE)}, got {self.isolate!r}")

    def isolates(self, largest_bytes: int) -> bool:
        """Whether a row whose largest tensor takes `largest_bytes` runs in a fresh process."""
        return self.isolate == "all" or (self.isolate == "large" and largest_bytes >= LARGE_ROW_BYTES)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchConfig":
        """The config from `dataclasses.asdict` read back from JSON (lists as tuples again)."""
        def tuples(v):
            return tuple(map(tuples, v)) if isinstance(v, list) else v

        names = {f.name for f in fields(cls)}
        return cls(**{k: tuples(v) for k, v in data.items() if k in names})


def _smoke(threads: int, study_shape: tuple[int, ...], study_batch: int) -> BenchConfig:
    """B0 at tiny shapes, one repeat: checks that every section runs, in seconds."""
    b0_3d, b0_fa, tiny = "evitvid:efficientvit_b0_3d", "evitvid:efficientvit_b0_frameavg", (3, 2, 32, 32)
    return BenchConfig(
        preset="smoke", threads=threads, warmup=0, repeats=1, budget_s=1.0,
        inference=((b0_3d, tiny, (1,)), (b0_fa, tiny, (1,)), ("timm-frames:efficientvit_b0", tiny, (1,))),
        memory=False, timm_pairs=("b0",), timm_shapes=((1, 3, 32, 32),), frames=(1, 2), frames_size=32,
        frames_models=("efficientvit_b0_3d", "efficientvit_b0_frameavg"), attn_frames=(1, 2),
        attn_tokens_per_frame=(4, 4), attn_heads=2, attn_dim=4, train=((b0_3d, tiny, 1),),
        channels_last=((b0_3d, tiny, 1),), compile=(), onnx=((b0_3d, tiny, 1),),
        backends=(((b0_3d, "timm-frames:efficientvit_b0"), tiny, 1),),
        depthwise=((8, 3, 2, 8, 1),), matmul_n=256)


def _light(threads: int, study_shape: tuple[int, ...], study_batch: int) -> BenchConfig:
    """The study's shape, few repeats, B1 and L1: the book's Performance chapter."""
    b1_3d, b1_fa, s = "evitvid:efficientvit_b1_3d", "evitvid:efficientvit_b1_frameavg", study_shape
    return BenchConfig(
        preset="light", threads=threads, warmup=1, repeats=5, budget_s=4.0,
        inference=(
            (b1_3d, s, (1,)), (b1_fa, s, (1,)), ("timm-frames:efficientvit_b1", s, (1,)),
            ("evitvid:efficientvit_l1_3d", s, (1,)), ("evitvid:efficientvit_l1_frameavg", s, (1,)),
            ("timm-frames:efficientvit_l1", s, (1,)),
        ),
        memory=True, memory_batches=(1,),
        timm_pairs=("b1", "l1"), timm_shapes=((8, 3, 64, 64),),
        frames=(1, 2, 4, 8, 16, 32), frames_size=64,
        attn_frames=(1, 4, 16, 64), attn_budget_gb=8.0,
        # the study's 3D model at its training shape first (what the study's budget depends on), then B1
        train=(("evitvid:efficientvit_b0_3d", s, study_batch), (b1_3d, s, 1), (b1_fa, s, 1)),
        channels_last=((b1_3d, s, study_batch), (b1_fa, s, study_batch)),
        compile=(),
        onnx=((b1_3d, s, 1),),
        backends=(((b1_3d, "timm-frames:efficientvit_b1"), s, 1),),
        # B1 at the study's shape and batch: stage 1 (a quarter of the frame), stage 3's aggregation (a sixteenth)
        depthwise=((128, 3, s[1], s[2] // 4, study_batch), (384, 5, s[1], s[2] // 16, study_batch)),
    )


def _full(threads: int, study_shape: tuple[int, ...], study_batch: int) -> BenchConfig:
    """Everything: the paper's and the study's shapes, batches 1 and 8, torchvision's video models."""
    b1_3d, b1_fa = "evitvid:efficientvit_b1_3d", "evitvid:efficientvit_b1_frameavg"
    inference = []
    for shape in (PAPER_SHAPE, study_shape):
        for size in ("b1", "l1"):
            for key in (f"evitvid:efficientvit_{size}_3d", f"evitvid:efficientvit_{size}_frameavg",
                        f"timm-frames:efficientvit_{size}"):
                inference.append((key, shape, (1, 8)))
    inference += [(f"torchvision:{n}", shape, (1, 8)) for n, shape in TORCHVISION_INPUTS.items()]
    return BenchConfig(
        preset="full", threads=threads, warmup=1, repeats=10, budget_s=20.0,
        inference=tuple(inference), memory=True, memory_batches=(1, 8),
        timm_pairs=("b1", "l1"), timm_shapes=((1, 3, 224, 224), (8, 3, 224, 224), (8, 3, 64, 64)),
        frames=(1, 2, 4, 8, 16, 32), frames_size=224,
        attn_frames=(1, 2, 4, 8, 16, 32, 64, 128), attn_budget_gb=8.0,
        train=((b1_3d, study_shape, 8), (b1_fa, study_shape, 8), (b1_3d, PAPER_SHAPE, 1),
               (b1_fa, PAPER_SHAPE, 1)),
        channels_last=((b1_3d, study_shape, 1), (b1_3d, study_shape, 8), (b1_3d, PAPER_SHAPE, 1),
                       (b1_fa, study_shape, 8), (b1_fa, PAPER_SHAPE, 1),
                       ("timm-frames:efficientvit_b1", PAPER_SHAPE, 1),
                       ("torchvision:r3d_18", TORCHVISION_INPUTS["r3d_18"], 1)),
        compile=((b1_3d, study_shape, 1), (b1_3d, PAPER_SHAPE, 1)),
        onnx=((b1_3d, study_shape, 1), (b1_3d, study_shape, 8)),
        # the goals in one run: the 3D B1 at the paper's shape through every backend, beside
        # timm's B1 on the same 16 frames (eager and on its own ONNX graph) and the frame-averaged B1
        backends=(((b1_3d, "timm-frames:efficientvit_b1", b1_fa), PAPER_SHAPE, 1),
                  ((b1_3d, "timm-frames:efficientvit_b1"), study_shape, 1)),
        depthwise=((128, 3, 8, 16, 8), (384, 5, 8, 4, 8), (128, 3, 16, 56, 1), (384, 5, 16, 14, 1)),
    )


# preset name -> its configuration for a number of threads and the study's clip shape and batch
PRESETS: dict[str, Callable[[int, tuple[int, ...], int], BenchConfig]] = {"smoke": _smoke, "light": _light,
                                                                          "full": _full}


def bench_config(preset: str = "light", *, study_shape: Sequence[int], study_batch: int,
                 threads: Optional[int] = None, layout: str = "channels_last", compile: bool = False,
                 memory: Optional[bool] = None, isolate: Optional[str] = None) -> BenchConfig:
    """The configuration of `preset` (smoke, light or full) for the study's clips (`study_shape`,
    C x T x H x W, and its training batch `study_batch`, as its profile gives them: the caller
    reads them there) with the command's options: `threads`
    (default torch's), every model and input in `layout`; `compile` adds the 3D B1 at the study's
    shape to a preset without a compile section; `memory=False` skips the memory subprocesses;
    `isolate` replaces the preset's rule for which rows run in a fresh process. (`sections.only_sections`
    keeps some sections of it.)"""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    cfg = replace(PRESETS[preset](threads or torch.get_num_threads(), tuple(study_shape), study_batch), layout=layout)
    if memory is not None:
        cfg = replace(cfg, memory=memory)
    if isolate is not None:
        cfg = replace(cfg, isolate=isolate)
    if compile and not cfg.compile:
        cfg = replace(cfg, compile=(("evitvid:efficientvit_b1_3d", tuple(study_shape), 1),))
    return cfg
