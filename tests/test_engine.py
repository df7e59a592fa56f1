"""The training engine: schedule, atomic checkpoints, resume equals an uninterrupted run, bf16, DDP over gloo."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import replace

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import Dataset

import evitvid
from evitvid.engine import ActionTask, Trainer, TrainConfig, lr_at


class ToyClips(Dataset):
    """Clips whose verb is whether brightness rises or falls over time (frame order matters)
    and whose noun is the colour channel; deterministic per index."""

    def __init__(self, n: int, frames: int = 4, size: int = 32, seed: int = 0, dtype: torch.dtype = torch.float32):
        g = torch.Generator().manual_seed(seed)
        self.noise = (torch.randn(n, 3, frames, size, size, generator=g) * 0.3).to(dtype)
        self.verb = torch.randint(0, 2, (n,), generator=g)
        self.noun = torch.randint(0, 3, (n,), generator=g)
        self.ramp = torch.linspace(-1, 1, frames, dtype=dtype)

    def __len__(self) -> int:
        return len(self.verb)

    def __getitem__(self, i: int) -> dict:
        video = self.noise[i].clone()
        ramp = self.ramp if self.verb[i] == 0 else self.ramp.flip(0)
        video[self.noun[i]] += ramp[:, None, None]
        return {"video": video, "verb": int(self.verb[i]), "noun": int(self.noun[i]), "narration_id": f"P01_01_{i}"}


def make_model(seed: int = 0, dtype: torch.dtype = torch.float32):
    torch.manual_seed(seed)
    return evitvid.create_model("efficientvit_b0_3d", num_verbs=2, num_nouns=3).to(dtype)


# the recipe as the study first trained it (evitvid.study.training.RECIPE): AdamW, no mixing, a step a batch
RECIPE = dict(optimizer="adamw", lr_scaling_batch=None, min_lr=1e-6, mixup_alpha=0.0, cutmix_alpha=0.0,
              mixup_prob=1.0, mixup_switch_prob=0.5, accum_steps=1, grad_checkpointing=False, clip_grad_norm=1.0)


def config(**kw) -> TrainConfig:
    return TrainConfig(**{**dict(epochs=3, batch_size=4, lr=2e-3, weight_decay=0.05, warmup_epochs=1,
                                 label_smoothing=0.1, progress=False, seed=0, **RECIPE), **kw})


def test_lr_warms_up_then_decays_to_min():
    lrs = [lr_at(s, 100, 10, 1.0, 0.01) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lr_at(100, 100, 10, 1.0, 0.01) == pytest.approx(0.01)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="epochs=0"):
        config(epochs=0)
    with pytest.raises(ValueError, match="precision='fp8'"):
        config(precision="fp8")
    with pytest.raises(ValueError, match="memory_format='nhwc'"):
        config(memory_format="nhwc")


@pytest.mark.parametrize("memory_format, channels_last", [("auto", True), ("channels_last", True),
                                                          ("contiguous", False)])
def test_memory_format_lays_out_the_model_and_its_checkpoint_loads_anywhere(tmp_path, memory_format,
                                                                           channels_last):
    cfg = config(epochs=1, memory_format=memory_format, ema_decay=0.9)
    trainer = Trainer(make_model(), ToyClips(8), None, cfg, tmp_path)
    assert trainer.model.channels_last is channels_last  # auto: channels-last on CPU

    def is_cl(t: torch.Tensor) -> bool:
        return t.is_contiguous(memory_format=torch.channels_last_3d) and not t.is_contiguous()

    def stem(m) -> torch.Tensor:
        return m.stem.in_conv.conv.weight

    assert is_cl(stem(trainer.model)) is channels_last and is_cl(stem(trainer.ema)) is channels_last
    trainer.fit()
    assert is_cl(trainer.optimizer.state[stem(trainer.model)]["exp_avg"]) is channels_last
    # the checkpoint loads into a model of the other layout, which keeps its own layout
    other = "contiguous" if channels_last else "channels_last"
    resumed = Trainer(make_model(seed=1), ToyClips(8), None, replace(cfg, memory_format=other), tmp_path)
    assert resumed.resume()
    assert is_cl(stem(resumed.model)) is not channels_last
    for a, b in zip(resumed.model.state_dict().values(), trainer.model.state_dict().values()):
        assert torch.equal(a, b)


def test_training_learns_and_writes_the_run_folder(tmp_path):
    train, val = ToyClips(32), ToyClips(16, seed=1)
    history = Trainer(make_model(), train, val, config(epochs=4), tmp_path).fit()
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert [{k: row[k] for k in h} for row, h in zip(saved, history)] == history
    assert {"epoch_seconds", "step_seconds", "data_seconds", "val_seconds"} <= set(saved[-1])  # and where time went
    assert {"val_verb_top1", "val_noun_top5", "val_action_top1", "val_verb_mean_class_acc"} <= set(saved[-1])
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["epoch"] == 4


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_ends(tmp_path):
    train = ToyClips(24)
    full = Trainer(make_model(), train, None, config(ema_decay=0.9), tmp_path / "full")
    full.fit()

    killed = Trainer(make_model(), train, None, config(ema_decay=0.9), tmp_path / "resumed")
    original = killed.train_one_epoch

    def die_in_epoch_two(epoch):
        if epoch == 1:
            raise KeyboardInterrupt  # killed in the middle of the second epoch
        return original(epoch)

    killed.train_one_epoch = die_in_epoch_two
    with pytest.raises(KeyboardInterrupt):
        killed.fit()
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["epoch"] == 1

    torch.manual_seed(123)  # a new process: a different global RNG state must not matter
    resumed = Trainer(make_model(seed=5), train, None, config(ema_decay=0.9), tmp_path / "resumed")
    history = resumed.fit()
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history == full.history
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(full.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)


def test_a_kill_between_checkpoint_and_metrics_is_repaired_on_resume(tmp_path):
    """Killed after the last checkpoint but before metrics.json: the rerun finds every epoch
    done, trains nothing, and still writes the full metrics."""
    train = ToyClips(16)
    trainer = Trainer(make_model(), train, None, config(epochs=2), tmp_path)
    trainer.fit()
    rows = json.loads((tmp_path / "metrics.json").read_text())
    (tmp_path / "metrics.json").write_text(json.dumps(rows[:1]))  # as if killed before the last write
    again = Trainer(make_model(), train, None, config(epochs=2), tmp_path)
    assert again.fit() == trainer.history
    assert [r["epoch"] for r in json.loads((tmp_path / "metrics.json").read_text())] == [1, 2]
    assert again.train_seconds == pytest.approx(trainer.train_seconds)  # counted across processes


def test_resuming_with_another_number_of_processes_is_refused(tmp_path):
    from evitvid.engine.trainer import ResumeError
    trainer = Trainer(make_model(), ToyClips(8), None, config(epochs=1), tmp_path)
    trainer.fit()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    state["world_size"] = 2
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ResumeError, match=r"written by 2 process\(es\), this run has 1"):
        Trainer(make_model(), ToyClips(8), None, config(epochs=2), tmp_path).fit()
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ResumeError, match=r"checkpoint.pt: cannot resume .*delete it"):
        Trainer(make_model(), ToyClips(8), None, config(epochs=2), tmp_path).fit()


def test_validation_cadence(tmp_path):
    history = Trainer(make_model(), ToyClips(16), ToyClips(8, seed=1), config(epochs=3, val_every=2),
                      tmp_path).fit()
    assert ["val_verb_top1" in h for h in history] == [False, True, True]  # every 2nd epoch and the last


def test_bf16_autocast_on_cpu_trains(tmp_path):
    history = Trainer(make_model(), ToyClips(16), ToyClips(8, seed=1), config(epochs=1, precision="bf16"),
                      tmp_path).fit()
    assert torch.isfinite(torch.tensor(history[0]["train_loss"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, run_dir: str, out: str) -> None:
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        trainer = Trainer(make_model(dtype=torch.float64), ToyClips(16, dtype=torch.float64), None,
                          config(epochs=2, freeze_bn=True), run_dir)
        trainer.fit()
        if rank == 0:
            torch.save(trainer.model.state_dict(), out)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes, each importing torch: about 7 s
def test_ddp_over_gloo_agrees_with_one_process_on_the_same_global_batch(tmp_path):
    """Two processes, each with half of the global batch, end with the weights of one process
    training on the whole batch (batch-norm statistics frozen: per-process batch statistics
    would otherwise differ, and SyncBatchNorm has no CPU kernel).

    In float64: summing two half-batch gradients rounds differently from one whole-batch sum,
    and AdamW divides each gradient by its running RMS, so in fp32 a weight whose gradient is
    near zero moves by up to the learning rate on rounding noise alone (2e-4 was seen here)."""
    single = Trainer(make_model(dtype=torch.float64), ToyClips(16, dtype=torch.float64), None,
                     config(epochs=2, freeze_bn=True), tmp_path / "single")
    single.fit()
    out = tmp_path / "ddp.pt"
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp"), str(out)), nprocs=2, join=True)
    ddp_state = torch.load(out)
    diffs = {k: (v - ddp_state[k]).abs().max().item() for k, v in single.model.state_dict().items()
             if v.is_floating_point()}
    moved = (single.model.state_dict()["stem.in_conv.conv.weight"] - make_model(dtype=torch.float64).state_dict()[
        "stem.in_conv.conv.weight"]).abs().max().item()
    assert moved > 1e-3  # training changed the weights, so agreement means something
    assert max(diffs.values()) < 1e-9, (max(diffs, key=diffs.get), max(diffs.values()))


def test_accumulated_batches_step_as_one_batch_of_their_size(tmp_path):
    """Two passes of 2 clips summed into a step train as one pass of 4 (float64; batch-norm
    statistics frozen, since a pass of 2 normalises by other statistics than one of 4; SGD
    without clipping, whose step, unlike AdamW's, follows the gradient's scale)."""
    clips = ToyClips(16, dtype=torch.float64)
    sgd = dict(epochs=2, freeze_bn=True, optimizer="sgd", clip_grad_norm=None)
    whole = Trainer(make_model(dtype=torch.float64), clips, None, config(**sgd), tmp_path / "a")
    split = Trainer(make_model(dtype=torch.float64), clips, None, config(**sgd, batch_size=2, accum_steps=2),
                    tmp_path / "b")
    assert split.steps_per_epoch == whole.steps_per_epoch == 4
    whole.fit()
    split.fit()
    assert split.step == whole.step == 8
    diffs = [(a - b).abs().max().item() for a, b in zip(whole.model.state_dict().values(),
                                                         split.model.state_dict().values()) if a.is_floating_point()]
    assert max(diffs) < 1e-9
    moved = (whole.model.stem.in_conv.conv.weight - make_model(dtype=torch.float64).stem.in_conv.conv.weight).abs()
    assert moved.max().item() > 1e-4  # training changed the weights, so agreement means something
    assert split.cfg.global_batch == 4


def test_a_training_set_smaller_than_a_step_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"smaller than one optimiser step \(batch_size=4 x accum_steps=3\)"):
        Trainer(make_model(), ToyClips(8), None, config(accum_steps=3), tmp_path)


def test_the_learning_rate_scales_with_the_global_batch():
    cfg = config(lr=3e-3, min_lr=1e-5, batch_size=4, accum_steps=8, lr_scaling_batch=128)
    assert cfg.peak_lr == pytest.approx(3e-3 * 32 / 128) and cfg.final_lr == pytest.approx(1e-5 * 32 / 128)
    assert config(lr=3e-3).peak_lr == 3e-3  # unscaled by default
    with pytest.raises(ValueError, match="lr_scaling_batch=0"):
        config(lr_scaling_batch=0)


def test_sgd_steps_with_momentum_and_decays_only_weights(tmp_path):
    trainer = Trainer(make_model(), ToyClips(8), None, config(epochs=1, optimizer="sgd", warmup_epochs=0), tmp_path)
    opt = trainer.optimizer
    assert isinstance(opt, torch.optim.SGD)
    assert all(g["momentum"] == 0.9 and not g["nesterov"] and g["dampening"] == 0 for g in opt.param_groups)
    decayed, kept = opt.param_groups
    assert decayed["weight_decay"] == 0.05 and all(p.ndim >= 2 for p in decayed["params"])
    assert kept["weight_decay"] == 0.0 and all(p.ndim <= 1 for p in kept["params"])
    trainer.fit()
    assert "momentum_buffer" in opt.state[decayed["params"][0]]
    with pytest.raises(ValueError, match="optimizer='lamb'"):
        config(optimizer="lamb")


def test_grad_checkpointing_recomputes_and_gives_the_same_gradients(tmp_path):
    model = make_model()
    trainer = Trainer(model, ToyClips(8), None, config(grad_checkpointing=True), tmp_path)
    assert trainer.model.grad_checkpointing
    clips = torch.stack([ToyClips(2)[i]["video"] for i in range(2)])
    grads = []
    for checkpointing in (False, True):
        net = make_model().eval()  # eval: batch norm's statistics are not updated twice
        net.set_grad_checkpointing(checkpointing)
        net(clips).verb.sum().backward()
        grads.append(net.stem.in_conv.conv.weight.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_mixup_that_never_mixes_trains_as_label_smoothing(tmp_path):
    """With mixing switched on but its chance 0, the targets are the smoothed one-hots and the
    loss adds no smoothing of its own: the same losses as plain label smoothing (up to the
    rounding of two ways of summing the same cross-entropy)."""
    plain = Trainer(make_model(), ToyClips(16), None, config(epochs=1), tmp_path / "a").fit()
    mixing = Trainer(make_model(), ToyClips(16), None, config(epochs=1, mixup_alpha=0.8, cutmix_alpha=1.0,
                                                              mixup_prob=0.0), tmp_path / "b").fit()
    assert mixing[0]["train_loss"] == pytest.approx(plain[0]["train_loss"], rel=1e-5)
    mixed = Trainer(make_model(), ToyClips(16), None, config(epochs=1, mixup_alpha=0.8, cutmix_alpha=1.0),
                    tmp_path / "c").fit()
    assert mixed[0]["train_loss"] != pytest.approx(plain[0]["train_loss"], rel=1e-3)


def test_an_action_head_trains_on_the_action_classes_of_its_vocabulary(tmp_path):
    pairs = [(1, 2), (0, 0), (0, 1), (1, 0), (0, 2), (1, 1)]  # every (verb, noun) of ToyClips, in no numeric order
    torch.manual_seed(0)
    model = evitvid.create_model("efficientvit_b0_3d", num_verbs=2, num_nouns=3, actions=pairs)
    task = ActionTask(actions=model.actions)
    targets = task.targets({"verb": torch.tensor([1, 0]), "noun": torch.tensor([2, 1])}, torch.device("cpu"))
    assert targets["action"].tolist() == [0, 2]
    with pytest.raises(ValueError, match=r"\(verb 1, noun 3\) is not one of the 6 action classes"):
        task.targets({"verb": torch.tensor([1]), "noun": torch.tensor([3])}, torch.device("cpu"))
    clips = torch.stack([ToyClips(2)[i]["video"] for i in range(2)])
    out = model.eval()(clips)
    assert torch.equal(task.loss(out, targets), torch.nn.functional.cross_entropy(out.action, targets["action"]))
    history = Trainer(model.train(), ToyClips(16), ToyClips(8, seed=1), config(epochs=1, mixup_alpha=0.8,
                                                                                 cutmix_alpha=1.0),
                      tmp_path / "a", task=task).fit()
    assert torch.isfinite(torch.tensor(history[0]["train_loss"])) and "val_action_top1" in history[0]
    other = ActionTask(actions=evitvid.models.ActionClasses(pairs[::-1]))
    with pytest.raises(ValueError, match=r"actions: the model's action classes .* are not the task's"):
        Trainer(model, ToyClips(8), None, config(), tmp_path / "b", task=other)
