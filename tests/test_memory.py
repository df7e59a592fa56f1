"""Whether a training step fits in memory (`evitvid.engine.memory`): the verdict and its line,
what the device has (cgroup limits read from files written here), and the estimate against a
step measured at a larger batch."""
from __future__ import annotations

import pytest
import torch

import evitvid
from evitvid.engine.memory import (BOUND_FACTOR, DeviceMemory, MemoryFitError, StepMemory, cgroup_available,
                                   check_step_memory, device_memory, require_fit, saved_bytes, step_bound,
                                   step_memory, step_peak)

GB = 10 ** 9
CLIP = (3, 16, 224, 224)
# the 3D B1 at the paper's clip as measured on the CPU (fp32): 0.9 GB a clip over 0.2 GB
B1 = StepMemory(fixed=int(0.2 * GB), per_clip=int(0.9 * GB), measured=((1, int(1.1 * GB)), (2, int(2.0 * GB))),
                method="test", precision="fp32")


def test_a_batch_that_fits_passes_and_one_that_does_not_names_batch_size_and_what_fits():
    require_fit(B1, DeviceMemory(24 * GB, 24 * GB, "test"), 16, clip=CLIP)  # 14.6 GB of 21.6: fits
    with pytest.raises(MemoryFitError) as err:
        require_fit(B1, DeviceMemory(21 * GB, 24 * GB, "MemAvailable"), 32, clip=CLIP)
    line = str(err.value)
    assert "\n" not in line and line.startswith("batch_size=32: one training step of 32 clips of 3 x 16 x 224 x 224")
    assert "needs about 29.0 GB (0.90 GB a clip, fp32)" in line
    assert "more than 90% of the 21.0 GB of cpu memory available (MemAvailable)" in line
    # (0.9 x 21 - 0.2) / 0.9 = 20.7: 20 clips fit, and 16, a divisor of 32, keeps the update's 32 clips in 2 steps
    assert "use batch_size=16 with accum_steps=2 (the same 32 clips an optimiser step; 20 a pass fit)" in line
    assert line.endswith("or grad_checkpointing: true")


def test_the_advice_follows_the_processes_the_setting_and_checkpointing():
    # under torchrun on 8 GPUs the run's batch_size=32 is 4 clips a pass in each process; it
    # already sums 2 passes a step
    with pytest.raises(MemoryFitError, match=r"^batch_size=32: .* use batch_size=16 with accum_steps=4 \(the same "
                                             r"64 clips an optimiser step; 2 a pass fit\)$"):
        require_fit(B1, DeviceMemory(int(2.5 * GB), 24 * GB, "cuda:0 free"), 4, clip=CLIP, batch_size=32,
                    accum_steps=2, device="cuda:0", grad_checkpointing=True)
    # two processes share the CPU: each has half of it
    require_fit(B1, DeviceMemory(24 * GB, 24 * GB, "test"), 12, clip=CLIP)  # 11 GB of 21.6
    with pytest.raises(MemoryFitError, match="in each of the processes sharing it"):
        require_fit(B1, DeviceMemory(24 * GB, 24 * GB, "test"), 12, clip=CLIP, batch_size=24, processes=2)
    # what the run keeps beside the step (a probe's clips, the loader's batches) is counted and named
    require_fit(B1, DeviceMemory(24 * GB, 24 * GB, "test"), 16, clip=CLIP)
    with pytest.raises(MemoryFitError, match=r"needs about 14.6 GB \(0.90 GB a clip, fp32\) beside 7.4 GB of clips "
                                             r"the run keeps, .*; use batch_size=8 with accum_steps=2"):
        require_fit(B1, DeviceMemory(24 * GB, 24 * GB, "test"), 16, clip=CLIP, held=int(7.4 * GB))
    # not even one clip: say what shrinks a clip
    with pytest.raises(MemoryFitError, match="even one clip does not fit: use grad_checkpointing: true, fewer "
                                             "num_frames or a smaller crop_size$"):
        require_fit(B1, DeviceMemory(GB, 24 * GB, "test"), 2, clip=CLIP)
    assert B1.largest_batch(int(0.2 * GB)) == 0 and B1.largest_batch(int(2 * GB)) == 2


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_cgroup_limit_is_read_with_its_reclaimable_page_cache(tmp_path):
    # v2, at the process's own path
    proc = tmp_path / "cgroup"
    _write(proc, "0::/user.slice/run-1.scope\n")
    folder = tmp_path / "fs" / "user.slice" / "run-1.scope"
    _write(folder / "memory.max", f"{8 * GB}\n")
    _write(folder / "memory.current", f"{5 * GB}\n")
    _write(folder / "memory.stat", f"anon {4 * GB}\nfile {GB}\ninactive_file {GB // 2}\n")
    assert cgroup_available(tmp_path / "fs", proc) == (3 * GB + GB // 2, 8 * GB)
    _write(folder / "memory.max", "max\n")
    assert cgroup_available(tmp_path / "fs", proc) is None
    # v1, the container's cgroup shown as the root
    _write(proc, "4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n")
    v1 = tmp_path / "v1"
    _write(v1 / "memory" / "memory.limit_in_bytes", f"{4 * GB}\n")
    _write(v1 / "memory" / "memory.usage_in_bytes", f"{3 * GB}\n")
    _write(v1 / "memory" / "memory.stat", f"cache 1\ntotal_inactive_file {GB // 4}\n")
    assert cgroup_available(v1, proc) == (GB + GB // 4, 4 * GB)
    _write(v1 / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")  # v1's "no limit"
    assert cgroup_available(v1, proc) is None


def test_the_machine_reports_what_it_has():
    found = device_memory("cpu")
    assert 0 < found.available <= found.total and found.source


def test_a_step_is_refused_before_it_runs_and_the_caller_s_state_is_left_alone():
    torch.manual_seed(0)
    model = evitvid.create_model("efficientvit_b0_3d", num_verbs=3, num_nouns=4)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    clip = (3, 4, 32, 32)
    # plenty of memory: the bound (one forward pass here) settles it, no step is measured
    fits = check_step_memory(model, clip, 8, device="cpu", capacity=DeviceMemory(100 * GB, 100 * GB, "test"))
    assert fits.method.startswith("bound") and fits.at(8) < 90 * GB
    # 20 MB: the bound does not fit, a step of one clip is measured in a fresh process and does not either
    with pytest.raises(MemoryFitError, match=r"^batch_size=8: one training step of 8 clips of 3 x 4 x 32 x 32 .*"
                                             r"even one clip does not fit"):
        check_step_memory(model, clip, 8, device="cpu", capacity=DeviceMemory(20_000_000, GB, "test"))
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # batch-norm statistics too


def test_the_bound_takes_a_model_whose_batch_norm_needs_two_small_clips():
    # strided in time as in space, the paper's code's model reduces 4 x 32 x 32 to one value a channel
    model = evitvid.create_model("efficientvit_b0_3d_paper", num_verbs=3, num_nouns=4)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        saved_bytes(model, (3, 4, 32, 32), 1)
    assert step_bound(model, (3, 4, 32, 32)).per_clip > 0


@pytest.mark.slow  # five training steps, each in a fresh process: about a minute
def test_the_estimate_is_within_a_fifth_of_a_step_measured_at_twice_the_batch():
    model = evitvid.create_model("efficientvit_b0_3d", num_verbs=97, num_nouns=300)
    clip = (3, 8, 96, 96)
    estimate = step_memory(model, clip, batch=8)
    assert [b for b, _ in estimate.measured] == [1, 8] and estimate.per_clip > 0  # the run's batch, measured
    measured, method = step_peak(model, clip, 16)
    # Measured when this was written: the line was 1.01 of the step for the 3D B0 and B1 at 16 x
    # 224 x 224 and the paper's code's model at 16 and 32 clips, 1.14 to 1.16 here, where two
    # measurements of one step of 31 clips differed by 12 % (the heap's layout varies with the
    # threads' timing, and matters more at this clip's 0.035 GB).
    assert 0.8 < measured / estimate.at(16) < 1.25, (measured, estimate)
    assert "fresh process" in method
    # the bound is above the measured step, by its factor's margin
    bound = step_bound(model, clip)
    assert bound.at(16) > measured and bound.per_clip == BOUND_FACTOR * (saved_bytes(model, clip, 2) // 2)
    # checkpointing is measured as it runs: the stages' activations are recomputed, not kept
    checkpointed = step_memory(model, clip, grad_checkpointing=True, batch=8)
    assert checkpointed.per_clip < 0.8 * estimate.per_clip


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_on_cuda_the_allocator_measures_the_step():
    model = evitvid.create_model("efficientvit_b0_3d", num_verbs=3, num_nouns=4)
    estimate = step_memory(model, (3, 8, 96, 96), device="cuda")
    assert estimate.method == "torch.cuda.max_memory_allocated" and estimate.per_clip > 0
    assert device_memory("cuda").available > 0


def test_the_cuda_branch_measures_the_allocators_peak_above_what_was_held(monkeypatch):
    """The CUDA path on a machine without one: torch.cuda's allocator counters replaced by a fake
    whose step peaks at 1 MB a clip over 5 MB held before, the step itself taken on the CPU. What
    the branch computes from them (the peak above what was allocated before, reset first, the
    cache emptied after) and the estimate fitted from two such steps are the real code's."""
    from evitvid.engine import memory
    state = {"allocated": 5 * 2 ** 20, "peak": 0, "calls": []}

    def take_step(model, optimizer, x, device, amp_dtype, task):
        real_step(model, optimizer, x, torch.device("cpu"), amp_dtype, task)
        state["peak"] = max(state["peak"], state["allocated"] + x.shape[0] * 2 ** 20)

    def reset(device):
        state["calls"].append("reset")
        state["peak"] = state["allocated"]
    real_step, real_prepared, real_clip = memory._take_step, memory._prepared, memory._clip
    monkeypatch.setattr(memory, "_take_step", take_step)
    monkeypatch.setattr(memory, "_prepared", lambda model, device, *a: real_prepared(model, torch.device("cpu"), *a))
    monkeypatch.setattr(memory, "_clip", lambda batch, clip, device: real_clip(batch, clip, torch.device("cpu")))
    monkeypatch.setattr(memory, "_optimizer", lambda model, device, name: torch.optim.SGD(model.parameters(), 0.1))
    monkeypatch.setattr(torch.random, "fork_rng", lambda devices: __import__("contextlib").nullcontext())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: state["calls"].append("empty"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", reset)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: state["calls"].append("before")
                        or state["allocated"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: state["peak"])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3 * GB, 24 * GB))
    model = evitvid.create_model("efficientvit_b0_3d", num_verbs=3, num_nouns=4)
    assert step_peak(model, (3, 2, 32, 32), 4, device="cuda:0") == (4 * 2 ** 20, "torch.cuda.max_memory_allocated")
    assert state["calls"] == ["empty", "before", "reset", "empty"]  # held read before the reset; cache emptied after
    estimate = step_memory(model, (3, 2, 32, 32), device="cuda:0", batch=8)
    assert estimate.method == "torch.cuda.max_memory_allocated" and estimate.per_clip == 2 ** 20
    assert device_memory("cuda:0") == DeviceMemory(3 * GB, 24 * GB, "cuda:0 free")
