"""Whether a training run fits in memory, decided before it starts.

A training step at the paper's clip size asks for more memory than most machines have: the
3D B1 takes about 1 GB a clip (3 x 16 x 224 x 224, fp32, on the CPU), so the paper's batch of
32 needs about 31 GB in one process. Unchecked, such a run grows until the kernel's OOM
killer ends it (in a notebook: a dead kernel, with no word about memory).
`check_step_memory` refuses it first, in one line that names `batch_size` and says what fits.

- `step_memory`: one training step as `Trainer` takes it from a run's second step on (the
  run's memory layout and precision, the optimiser's state allocated; forward, the task's
  loss, backward, gradient clipping, the fused optimiser step), measured on a copy of
  the model at batch 1 and 2 at the real clip size and extrapolated linearly:
  `StepMemory.at(batch)`. On CUDA, `torch.cuda.max_memory_allocated` above what was allocated
  before the copy. On the CPU, each batch in a fresh process (a new interpreter: a fork would
  share this process's heap and its peak), whose peak RSS (Linux's VmHWM, reset through
  /proc/self/clear_refs) above its RSS before the step, plus the parameters and the input it
  held already, is the measure: what the OOM killer counts, oneDNN's buffers and the
  allocator's overhead included, which a count of live tensors misses (17 % of the step
  without, 44 % with gradient checkpointing: 3D B0, 16 x 160 x 160, when this was written).
- `step_bound`: an upper bound from one forward pass in this process (what autograd saves);
  where it fits, the measurement is spared (the study's small clips never come near).
- `device_memory`: what the device has for it: CUDA, the device's free memory
  (`torch.cuda.mem_get_info`); the CPU, MemAvailable (/proc/meminfo) and, under a cgroup
  memory limit, what is left below it (page cache the kernel can drop counted as free).
- `check_step_memory`: the two compared, with `HEADROOM` of the device kept for what a step
  does not count (the loader's batches, the allocator's fragmentation over many steps).

Precision is the run's own: the step is measured under the autocast the run uses (bf16 or
fp16 on CUDA by default, fp32 on the CPU), so its activations are measured at their size,
not scaled by a rule. The measurement costs two steps (with the 3D B1 at 16 x 224 x 224 on
two CPU cores, of 1 and 5 clips: about 20 s) and leaves the model and the global random
generators as they were. Against steps measured at larger batches the line was within 1 % (3D
B0 and B1 at 16 x 224 x 224, the paper's code's 3D B0 at 16 and 32 clips), 7 % over (the B1
with gradient checkpointing) and 14 % under (the B0 at 8 x 96 x 96, where two measurements of
one step of 31 clips differed by 12 %: `HEADROOM` is kept for that).
"""
from __future__ import annotations

import copy
import gc
import json
import math
import os
import pickle
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn as nn

from ..allocator import release_free_memory
from ..runtime import autocast_dtype, resolve_device, set_memory_format
from .tasks import VIDEO, Task
from .trainer import enable_grad_checkpointing, make_optimizer

__all__ = ["HEADROOM", "SECOND_STEP_BYTES", "BOUND_FACTOR", "BOUND_SLACK", "StepMemory", "DeviceMemory",
           "MemoryFitError", "MeasurementDied", "step_peak", "step_memory", "saved_bytes", "step_bound",
           "device_memory", "cgroup_available", "require_fit", "check_step_memory"]

GB = 1e9
# Share of the device a step's estimate may take: the rest is for what one step does not
# count (the loader's batches in flight, fragmentation over many steps, on CUDA the context).
HEADROOM = 0.9
# `step_memory`: the second measured step holds at least this much saved activation, so that what
# varies between measurements of one step (the 3D B1's step of 1 clip at 16 x 224 x 224 peaked at
# 1.07 and 1.28 GB in two processes) and the heap's free space at the start are a small part of
# the line's slope.
SECOND_STEP_BYTES = 4_000_000_000
# `step_bound`: the peaks `step_peak` measured (3D B0 and B1, frame-averaged B0 and L1; 1, 2 and 4
# clips of 4 x 64 x 64 to 16 x 224 x 224, with and without checkpointing) stayed below
# 1.3 x (parameters' state + saved tensors) + 0.1 GB; twice that, and 0.5 GB for the libraries'
# buffers a first step pages in, leaves room.
BOUND_FACTOR = 2
BOUND_SLACK = 500_000_000


class MemoryFitError(ValueError):
    """A training step will not fit in the device's memory; the message names `batch_size` and what to do."""


class MeasurementDied(RuntimeError):
    """The process measuring a step died (killed by the OOM killer, most likely)."""


@dataclass(frozen=True)
class StepMemory:
    """Peak memory of one training step, in bytes, as a line in the batch: `fixed + batch * per_clip`.

    `fixed` holds the parameters, their gradients and the optimizer's state, `per_clip` the
    activations one more clip adds. `measured` is ((batch, peak bytes), ...), what the line
    was drawn through; `method` says how it was measured, `precision` under which autocast.
    """
    fixed: int
    per_clip: int
    measured: tuple[tuple[int, int], ...]
    method: str
    precision: str

    def at(self, batch: int) -> int:
        """Peak bytes of a step of `batch` clips."""
        return self.fixed + batch * self.per_clip

    def largest_batch(self, available: int) -> int:
        """The most clips a step may hold within `available` bytes (0 when even one does not fit)."""
        if self.per_clip <= 0:
            return sys.maxsize if self.fixed <= available else 0
        return max(0, (available - self.fixed) // self.per_clip)


@dataclass(frozen=True)
class DeviceMemory:
    """What a device has: `available` bytes for a run now, `total` bytes, and `source`, where
    `available` was read (e.g. "MemAvailable", "the cgroup's memory limit", "cuda:0 free")."""
    available: int
    total: int
    source: str


# ------------------------------------------------------------------ one step, measured


def _precision_name(amp_dtype: Optional[torch.dtype]) -> str:
    return {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[amp_dtype]


def _optimizer(model: nn.Module, device: torch.device, name: str) -> torch.optim.Optimizer:
    """The trainer's optimiser (`make_optimizer`) as it is from a run's second step on, its state
    allocated (AdamW's two moments, SGD's momentum). A first step has none while it runs its
    forward and backward passes, and so peaks lower where the parameters' state outweighs the
    activations (the L1 at small clips)."""
    optimizer = make_optimizer(name, model, 1e-3, 0.05, device)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    return optimizer


def _take_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, device: torch.device,
               amp_dtype: Optional[torch.dtype], task: Task) -> None:
    """One optimisation step as `Trainer.train_one_epoch` takes it (targets of class 0)."""
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    targets = {name: torch.zeros(x.shape[0], dtype=torch.long, device=device) for name in task.num_classes(model)}
    optimizer.zero_grad(set_to_none=True)
    if amp_dtype is None:
        out = model(x)
    else:
        with torch.autocast(device.type, dtype=amp_dtype):
            out = model(x)
    loss = task.loss(out, targets, label_smoothing=0.1)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()


def _prepared(model: nn.Module, device: torch.device, memory_format: str, grad_checkpointing: bool) -> nn.Module:
    model = set_memory_format(model.to(device), memory_format, device).train()
    return enable_grad_checkpointing(model) if grad_checkpointing else model


def _state_bytes(model: nn.Module) -> int:
    """The parameters' state at most: the parameters, their gradients and AdamW's two moments."""
    return 4 * sum(p.numel() * p.element_size() for p in model.parameters())


def _clip(batch: int, clip: Sequence[int], device: torch.device) -> torch.Tensor:
    # a generator of its own: the global ones, which seed the run, are left alone
    return torch.randn((batch, *clip), generator=torch.Generator().manual_seed(0)).to(device)


def _rss_kb(key: str) -> Optional[int]:
    """VmRSS or VmHWM (peak RSS) of this process in KiB, from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            return next((int(v.split()[0]) for k, v in (line.split(":", 1) for line in f) if k == key), None)
    except OSError:
        return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        return True
    except OSError:
        return False


def _cpu_peak(model: nn.Module, clip: tuple[int, ...], batch: int, amp_dtype: Optional[torch.dtype],
              memory_format: str, grad_checkpointing: bool, task: Task, optimizer: str,
              threads: int) -> tuple[int, str]:
    """(peak bytes, how measured) of one CPU step, in a fresh process (see the module docstring)."""
    torch.set_num_threads(threads)
    device = torch.device("cpu")
    model = _prepared(model, device, memory_format, grad_checkpointing)
    x = _clip(batch, clip, device)
    held = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers(), x))
    gc.collect()
    release_free_memory()  # what was freed so far (the pickled model, the weights before their layout) is not reused
    if _reset_peak_rss() and _rss_kb("VmHWM") is not None:
        before = _rss_kb("VmRSS") * 1024
        _take_step(model, _optimizer(model, device, optimizer), x, device, amp_dtype, task)
        return held + _rss_kb("VmHWM") * 1024 - before, "peak RSS of a fresh process (VmHWM)"
    # without /proc (macOS): the process's peak so far, which building the model and its input set
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    _take_step(model, _optimizer(model, device, optimizer), x, device, amp_dtype, task)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return held + peak - before, "peak RSS of a fresh process (ru_maxrss)"


def _cuda_peak(model: nn.Module, clip: tuple[int, ...], batch: int, device: torch.device,
               amp_dtype: Optional[torch.dtype], memory_format: str, grad_checkpointing: bool,
               task: Task, optimizer: str) -> tuple[int, str]:
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    try:
        copy_ = _prepared(copy.deepcopy(model), device, memory_format, grad_checkpointing)
        _take_step(copy_, _optimizer(copy_, device, optimizer), _clip(batch, clip, device), device, amp_dtype, task)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before, "torch.cuda.max_memory_allocated"
    finally:
        copy_ = None
        gc.collect()
        torch.cuda.empty_cache()


# The measuring process: a new interpreter (`-c`, so no main module of the caller's is imported
# again, as multiprocessing's spawn would), tuned as every evitvid training process is
# (`evitvid.allocator`), dying with this one (`evitvid.workers`). Arguments arrive pickled on
# stdin, as multiprocessing would send them; the result leaves through a file, so that whatever
# the step prints does not matter.
_CHILD = """\
import json, pickle, sys
from evitvid.allocator import tune_malloc
tune_malloc()
from evitvid.workers import die_with_parent
die_with_parent(int(sys.argv[1]))
from evitvid.engine.memory import _cpu_peak
result = _cpu_peak(*pickle.load(sys.stdin.buffer))
with open(sys.argv[2], "w") as f:
    json.dump(result, f)
"""


def _in_fresh_process(args: tuple, batch: int) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="evitvid-memory-") as tmp:
        out = Path(tmp) / "peak.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # this process's imports
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(os.getpid()), str(out)], input=pickle.dumps(args),
                              capture_output=True, env=env)
        if proc.returncode < 0:
            raise MeasurementDied(f"the process measuring a step of {batch} clip(s) was killed by "
                                  f"{signal.Signals(-proc.returncode).name} (out of memory, most likely)")
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise RuntimeError(f"measuring a training step of {batch} clip(s) failed: {tail[0][:300]}")
        peak, method = json.loads(out.read_text())
        return int(peak), method


def step_peak(model: nn.Module, clip: Sequence[int], batch: int, *, device: torch.device | str = "cpu",
              amp_dtype: Optional[torch.dtype] = None, memory_format: str = "auto", grad_checkpointing: bool = False,
              task: Task = VIDEO, optimizer: str = "adamw") -> tuple[int, str]:
    """(peak bytes, how it was measured) of one training step of `batch` clips of shape `clip`
    (C x T x H x W, or C x H x W for images) on a copy of `model`, with the trainer's
    `optimizer` ("adamw" or "sgd"): on CUDA in this process, on the CPU in a fresh one. The
    global random generators are left as they were. Raises `MeasurementDied` when the
    measuring process is killed (by the OOM killer, most likely)."""
    device = torch.device(device)
    clip = tuple(int(c) for c in clip)
    if device.type == "cuda":
        with torch.random.fork_rng(devices=[device]):
            return _cuda_peak(model, clip, batch, device, amp_dtype, memory_format, grad_checkpointing, task,
                              optimizer)
    return _in_fresh_process((model, clip, batch, amp_dtype, memory_format, grad_checkpointing, task, optimizer,
                              torch.get_num_threads()), batch)


def _clip_text(batch: int, clip: Sequence[int]) -> str:
    return f"{batch} clip{'s' if batch != 1 else ''} of {' x '.join(str(c) for c in clip)}"


def _second_batch(saved_per_clip: int, batch: Optional[int]) -> int:
    """The batch of the second measured step: enough clips for `SECOND_STEP_BYTES` of saved
    activations (at least 2), never more than the run's `batch` (which is then measured itself)."""
    second = max(2, math.ceil(SECOND_STEP_BYTES / max(saved_per_clip, 1)))
    return second if batch is None else max(2, min(second, batch))


def step_memory(model: nn.Module, clip: Sequence[int], *, device: torch.device | str = "cpu",
                amp_dtype: Optional[torch.dtype] = None, memory_format: str = "auto",
                grad_checkpointing: bool = False, task: Task = VIDEO, optimizer: str = "adamw",
                batch: Optional[int] = None, capacity: Optional[int] = None) -> StepMemory:
    """A training step's peak memory as a line in the batch, through a step of 1 clip and one of
    as many as hold `SECOND_STEP_BYTES` of saved activations (`saved_bytes`; at least 2, at most
    the run's `batch`, when given), each measured by `step_peak`.

    The second step is that large because a step's peak varies between processes by 0.1 to 0.2
    GB, and because the first steps' growth is partly absorbed by what the heap already holds
    free: through 1 and 2 clips, the paper's code's 3D B0 (0.09 GB saved a clip at 16 x 224 x
    224) was extrapolated to 1.45 GB at 16 clips, which measured 2.15 GB, and the 3D B1's slope
    came out at 0.77 or 0.98 GB a clip in two tries (0.92 between 4 and 8 clips).
    With `capacity` (bytes), the second step is made smaller, or left out, so that the line
    through the first (the parameters' state as its fixed part) stays within it; without the
    second, that line is returned: it overstates the fixed part, not the total at 1 clip."""
    kwargs = dict(device=device, amp_dtype=amp_dtype, memory_format=memory_format,
                  grad_checkpointing=grad_checkpointing, task=task, optimizer=optimizer)
    precision = _precision_name(amp_dtype)
    one, method = step_peak(model, clip, 1, **kwargs)
    guess = max(1, one - _state_bytes(model))  # what a clip adds, at most (the first step's own overheads in it)
    second = _second_batch(saved_bytes(model, clip, 2, amp_dtype=amp_dtype, memory_format=memory_format) // 2, batch)
    if capacity is not None:
        second = min(second, 1 + max(0, capacity - one) // guess)
        if second < 2:
            return StepMemory(one - guess, guess, ((1, one),), method, precision)
    peak, _ = step_peak(model, clip, second, **kwargs)
    per_clip = max(0, (peak - one) // (second - 1))
    return StepMemory(max(0, one - per_clip), per_clip, ((1, one), (second, peak)), method, precision)


def saved_bytes(model: nn.Module, clip: Sequence[int], batch: int = 1, *, amp_dtype: Optional[torch.dtype] = None,
                memory_format: str = "auto") -> int:
    """Bytes of what autograd saves for the backward pass in a forward pass of `batch` clips
    of a copy of `model` on the CPU, without gradient checkpointing: tensors counted once per
    storage (views share it), the parameters (which convolutions save) not counted. The global
    random generators are left as they were."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    device = torch.device("cpu")
    with torch.random.fork_rng(devices=[]):
        copy_ = _prepared(copy.deepcopy(model), device, memory_format, False)
        if hasattr(copy_, "set_grad_checkpointing"):
            copy_.set_grad_checkpointing(False)
        weights = {p.untyped_storage().data_ptr() for p in copy_.parameters()}
        x = _clip(batch, clip, device)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            if amp_dtype is None:
                copy_(x)
            else:
                with torch.autocast("cpu", dtype=amp_dtype):
                    copy_(x)
    return sum(n for ptr, n in storages.items() if ptr not in weights)


def step_bound(model: nn.Module, clip: Sequence[int], *, amp_dtype: Optional[torch.dtype] = None,
               memory_format: str = "auto") -> StepMemory:
    """An upper bound of a CPU training step's peak memory, in this process and at the cost of
    one forward pass of two clips: `BOUND_FACTOR` times the parameters' state (the parameters,
    their gradients, AdamW's two moments) and what autograd saves of a clip (`saved_bytes`,
    without checkpointing, which only lowers the peak), plus `BOUND_SLACK`. Where the bound
    fits, the measurement in fresh processes (`step_memory`) is not needed."""
    state = _state_bytes(model)
    # two clips, halved: batch norm in training needs more than one value a channel, which one small
    # clip does not give a model strided in time as in space (the paper's code's, at 4 x 32 x 32)
    per_clip = saved_bytes(model, clip, 2, amp_dtype=amp_dtype, memory_format=memory_format) // 2
    return StepMemory(BOUND_FACTOR * state + BOUND_SLACK, BOUND_FACTOR * per_clip, (),
                      f"bound: {BOUND_FACTOR} x (parameters' state + what autograd saves) + {BOUND_SLACK / GB:g} GB",
                      _precision_name(amp_dtype))


# ------------------------------------------------------------------ what the device has


def _read_int(path: Path) -> Optional[int]:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _inactive_file(stat: Path, key: str) -> int:
    try:
        for line in stat.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def cgroup_available(root: Path | str = "/sys/fs/cgroup", proc_cgroup: Path | str = "/proc/self/cgroup",
                     ) -> Optional[tuple[int, int]]:
    """(bytes left under this process's cgroup memory limit, the limit), or None without a limit.

    cgroup v2 (`memory.max`, `memory.current`, `memory.stat`'s `inactive_file`) and v1
    (`memory/memory.limit_in_bytes`, `memory.usage_in_bytes`, `total_inactive_file`), at the
    process's own cgroup path or, where the container shows its cgroup as the root, at `root`.
    Inactive page cache counts as free: the kernel drops it before it kills."""
    root = Path(root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        lines = []
    entries = [line.split(":", 2) for line in lines if line.count(":") >= 2]
    v2 = [path for _, controllers, path in entries if controllers == ""]
    v1 = [path for _, controllers, path in entries if "memory" in controllers.split(",")]
    candidates = []
    for rel in v2 + [""]:
        folder = root / rel.lstrip("/")
        candidates.append((folder / "memory.max", folder / "memory.current", folder / "memory.stat", "inactive_file"))
    for rel in v1 + [""]:
        folder = root / "memory" / rel.lstrip("/")
        candidates.append((folder / "memory.limit_in_bytes", folder / "memory.usage_in_bytes", folder / "memory.stat",
                           "total_inactive_file"))
    for limit_file, usage_file, stat, key in candidates:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is None or usage is None:
            continue  # "max" (v2: no limit) reads as None too
        if limit >= 1 << 60:  # v1's "no limit" is the largest page-aligned 64-bit value
            return None
        return max(0, limit - usage + _inactive_file(stat, key)), limit
    return None


def _meminfo() -> Optional[dict[str, int]]:
    try:
        with open("/proc/meminfo") as f:
            return {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in f)
                    if k in ("MemTotal", "MemAvailable")}
    except OSError:
        return None


def device_memory(device: torch.device | str = "cpu") -> DeviceMemory:
    """What `device` has for a run now (see the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return DeviceMemory(free, total, f"{device} free")
    info = _meminfo()
    if info is None or "MemAvailable" not in info:  # not Linux: the physical memory, less nothing
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return DeviceMemory(total, total, "physical memory")
    found = DeviceMemory(info["MemAvailable"], info["MemTotal"], "MemAvailable")
    limited = cgroup_available()
    if limited is not None and limited[0] < found.available:
        return DeviceMemory(limited[0], limited[1], "the cgroup's memory limit")
    return found


# ------------------------------------------------------------------ the verdict


def _gb(n: float) -> str:
    return f"{n / GB:.1f} GB" if n >= 0.95 * GB else f"{n / GB:.2f} GB"


def require_fit(memory: StepMemory, capacity: DeviceMemory, batch: int, *, clip: Sequence[int],
                batch_size: Optional[int] = None, accum_steps: int = 1, device: torch.device | str = "cpu",
                processes: int = 1, grad_checkpointing: bool = False, held: int = 0,
                headroom: float = HEADROOM) -> None:
    """Raise `MemoryFitError` when `processes` passes of `batch` clips each (the processes on
    this device), and `held` bytes each process keeps beside its step, exceed `headroom` of
    `capacity`: one line naming `batch_size` (the run's, one pass over every process; default
    `batch`), what a pass needs and what the device has, and what would fit: a smaller
    batch_size with more `accum_steps` to keep the clips of an optimiser step, or
    grad_checkpointing."""
    usable = capacity.available * headroom / processes - held
    need = memory.at(batch)
    if need <= usable:
        return
    batch_size = batch if batch_size is None else batch_size
    per = " in each of the processes sharing it" if processes > 1 else ""
    head = (f"batch_size={batch_size}: one training step of {_clip_text(batch, clip)} needs about {_gb(need)}{per} "
            f"({_gb(memory.per_clip)} a clip, {memory.precision})"
            + (f" beside {_gb(held)} of clips the run keeps" if held else "")
            + f", more than {headroom:.0%} of the "
            f"{_gb(capacity.available)} of {torch.device(device).type} memory available ({capacity.source})")
    fits = min(memory.largest_batch(int(usable)), batch)
    checkpointing = "" if grad_checkpointing else "grad_checkpointing: true, "
    if fits == 0:
        raise MemoryFitError(f"{head}; even one clip does not fit: use {checkpointing}fewer num_frames or a smaller "
                             f"crop_size")
    smaller = max(d for d in range(1, fits + 1) if batch % d == 0)
    steps = batch // smaller
    raise MemoryFitError(f"{head}; use batch_size={batch_size // steps} with accum_steps={accum_steps * steps} (the "
                         f"same {batch_size * accum_steps} clips an optimiser step; {fits} a pass fit)"
                         + ("" if grad_checkpointing else ", or grad_checkpointing: true"))


def check_step_memory(model: nn.Module, clip: Sequence[int], batch: int, *, batch_size: Optional[int] = None,
                      accum_steps: int = 1, device: torch.device | str = "auto", precision: str = "auto",
                      memory_format: str = "auto", grad_checkpointing: bool = False, optimizer: str = "adamw",
                      task: Task = VIDEO, host_bytes: int = 0, capacity: Optional[DeviceMemory] = None) -> StepMemory:
    """Measure a training step of `batch` clips (what this process takes in one forward and
    backward pass: the run's `batch_size` over its processes) and raise `MemoryFitError` when
    it does not fit the device; returns the estimate otherwise.

    `device`, `precision`, `memory_format`, `optimizer` and `task` are the run's
    (`TrainConfig`'s names), as are `batch_size` and `accum_steps`, which the message names.
    `grad_checkpointing` measures the model as `set_grad_checkpointing(True)` runs it (a model
    already set so is measured so either way). `host_bytes` is what the run keeps in the
    host's memory beside the step (clips decoded for a probe, the loader's batches in flight),
    counted when the device is the CPU. `capacity` defaults to `device_memory(device)`, read
    before the measurement. On the CPU the training processes on this machine (torchrun's
    LOCAL_WORLD_SIZE) share it."""
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    capacity = capacity or device_memory(device)
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if device.type == "cpu" else 1
    held = host_bytes if device.type == "cpu" else 0
    grad_checkpointing = grad_checkpointing or bool(getattr(model, "grad_checkpointing", False))
    amp_dtype = autocast_dtype(precision, device)
    usable = capacity.available * HEADROOM / processes - held
    if device.type == "cpu":  # a bound that fits spares the measurement (seconds in fresh processes)
        bound = step_bound(model, clip, amp_dtype=amp_dtype, memory_format=memory_format)
        if bound.at(batch) <= usable:
            return bound
    try:
        memory = step_memory(model, clip, device=device, amp_dtype=amp_dtype, memory_format=memory_format,
                             grad_checkpointing=grad_checkpointing, task=task, optimizer=optimizer, batch=batch,
                             capacity=int(max(0, usable)))
    except MeasurementDied as exc:
        checkpointing = "" if grad_checkpointing else "grad_checkpointing: true, "
        raise MemoryFitError(f"batch_size={batch if batch_size is None else batch_size}: {exc}; use {checkpointing}"
                             f"fewer num_frames or a smaller crop_size") from None
    require_fit(memory, capacity, batch, clip=clip, batch_size=batch_size, accum_steps=accum_steps, device=device,
                processes=processes, grad_checkpointing=grad_checkpointing, held=held)
    return memory
