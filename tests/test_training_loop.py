"""The training loop: exact resume, interruption, non-finite losses, run folder, bad settings."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from training_utils import PairedToy, assert_same_state, state_of, tiny_cyclegan, tiny_pix2pix, tiny_todaygan

from vid2vid_app.config import from_dict, to_dict
from vid2vid_app.errors import UserError
from vid2vid_app.imaging import read_image
from vid2vid_app.models import build_generator
from vid2vid_app.training import (
    Amp,
    TrainConfig,
    TrainingInterrupted,
    checkpoint_path,
    load_checkpoint,
    lr_factor,
    save_checkpoint,
    train,
)
from vid2vid_app.training.objectives.base import Objective, to_floats, zero_grad


def cfg(**kw) -> TrainConfig:
    base = dict(steps=4, decay_steps=2, device="cpu", log_every=1, sample_every=0, checkpoint_every=100,
                deterministic=True, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def optimizer_states(run_dir, stage="main"):
    return load_checkpoint(checkpoint_path(run_dir, stage))["optimizers"]


def assert_same_optimizers(a, b):
    for name in a:
        for pid, st in a[name]["state"].items():
            for k, v in st.items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(b[name]["state"][pid][k])), (name, pid, k)
        assert [g["lr"] for g in a[name]["param_groups"]] == [g["lr"] for g in b[name]["param_groups"]]


@pytest.mark.parametrize(("make", "cpu_bf16"), [(tiny_pix2pix, False), (tiny_pix2pix, True), (tiny_cyclegan, False),
                                              (tiny_todaygan, True)],
                         ids=["pix2pix-fp32", "pix2pix-bf16", "cyclegan-fp32", "todaygan-bf16"])
def test_resume_is_bit_exact(tmp_path, make, cpu_bf16):
    """4 steps straight == 2 steps + resume + 2 steps: weights, optimizer state and image pools,
    with shuffled data (5 samples: the run crosses an epoch boundary), random augmentation,
    dropout and batch norm (pix2pix) and a history pool that swaps images (CycleGAN and ToDayGAN,
    pool 2); in fp32 and in CPU bf16 autocast alike."""
    straight = make()
    train(straight, PairedToy(), cfg(decay_steps=0, cpu_bf16=cpu_bf16), tmp_path / "a", quiet=True)

    first = make()
    train(first, PairedToy(), cfg(steps=2, decay_steps=0, cpu_bf16=cpu_bf16), tmp_path / "b", quiet=True)
    resumed = make(seed=99)  # different initial weights: everything must come from the checkpoint
    result = train(resumed, PairedToy(), cfg(decay_steps=0, cpu_bf16=cpu_bf16), tmp_path / "b", resume=True,
                   quiet=True)

    assert result.start_step == 2 and result.step == 4
    assert_same_state(state_of(straight), state_of(resumed))
    assert_same_optimizers(optimizer_states(tmp_path / "a"), optimizer_states(tmp_path / "b"))
    if make in (tiny_cyclegan, tiny_todaygan):
        pools_a = load_checkpoint(checkpoint_path(tmp_path / "a"))["objective"]
        pools_b = load_checkpoint(checkpoint_path(tmp_path / "b"))["objective"]
        assert len(pools_a["pool_B"]["images"]) == 2
        for x, y in zip(pools_a["pool_B"]["images"], pools_b["pool_B"]["images"], strict=True):
            assert torch.equal(x, y)


def test_interrupt_writes_checkpoint_and_resume_matches(tmp_path):
    """KeyboardInterrupt while loading batch 3 -> TrainingInterrupted (also a KeyboardInterrupt)
    naming --resume, checkpoint at step 2; resuming then finishes exactly like a straight run,
    including the LR decay over the last 2 steps."""
    straight = tiny_pix2pix()
    train(straight, PairedToy(), cfg(), tmp_path / "a", quiet=True)

    with pytest.raises(TrainingInterrupted, match="--resume") as info:
        train(tiny_pix2pix(), PairedToy(interrupt_at=3), cfg(), tmp_path / "b", quiet=True)
    assert isinstance(info.value, KeyboardInterrupt) and isinstance(info.value, UserError)
    assert load_checkpoint(checkpoint_path(tmp_path / "b"))["step"] == 2

    resumed = tiny_pix2pix(seed=7)
    train(resumed, PairedToy(), cfg(), tmp_path / "b", resume=True, quiet=True)
    assert_same_state(state_of(straight), state_of(resumed))
    # stats.jsonl holds each step once, with the scheduled LR.
    records = [json.loads(line) for line in (tmp_path / "b" / "stats.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "losses" in r]
    assert steps == [1, 2, 3, 4]
    assert [r["lr"] for r in records if "losses" in r] == [2e-4 * lr_factor(s - 1, 4, 2) for s in steps]


def test_ctrl_c_finishes_the_step_then_saves(tmp_path):
    """A real SIGINT (sent while batch 2 loads) lets step 2 finish, then saves at step 2 and stops."""
    def on_call(n):
        if n == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="interrupted at step 2"):
        train(tiny_pix2pix(), PairedToy(on_call=on_call), cfg(), tmp_path, quiet=True)
    assert load_checkpoint(checkpoint_path(tmp_path))["step"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    """A NaN input at step 3 (no shuffling) stops training with a message naming the step and the
    step-2 checkpoint, which stays untouched and finite."""
    data = PairedToy(augment=False, nan_index=2)
    with pytest.raises(UserError, match=r"non-finite loss at step 3 .*last good checkpoint is .*step 2"):
        train(tiny_pix2pix(), data, cfg(shuffle=False, checkpoint_every=2), tmp_path, quiet=True)
    ckpt = load_checkpoint(checkpoint_path(tmp_path))
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for net in ckpt["networks"].values() for v in net.values()
               if v.is_floating_point())
    assert "non-finite loss at step 3" in (tmp_path / "log.txt").read_text()


def test_finished_stage_is_a_no_op_that_loads_weights(tmp_path):
    """Resuming a finished stage returns at once with the trained weights, without rewriting."""
    trained = tiny_pix2pix()
    train(trained, PairedToy(), cfg(steps=2), tmp_path, quiet=True)
    path = checkpoint_path(tmp_path)
    mtime = path.stat().st_mtime_ns
    fresh = tiny_pix2pix(seed=5)
    result = train(fresh, PairedToy(interrupt_at=1), cfg(steps=2), tmp_path, resume=True, quiet=True)
    assert result.step == 2 and result.start_step == 2 and result.losses == {}
    assert path.stat().st_mtime_ns == mtime
    assert_same_state(state_of(trained), state_of(fresh))


def test_run_folder_contents(tmp_path):
    """config.json, log.txt, stats.jsonl with losses/LR/rate and validation, samples, checkpoints."""
    calls = []

    def val_fn(generator):
        calls.append(generator.training)
        generator.eval()  # the loop must put it back into train mode
        return {"psnr": 12.5}

    obj = tiny_pix2pix()
    result = train(obj, PairedToy(), cfg(steps=4, log_every=2, sample_every=2, checkpoint_every=2),
                   tmp_path, quiet=True, app_config={"name": "toy"}, val_fn=val_fn)
    assert obj.G.training and calls == [True, True]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["app_config"] == {"name": "toy"} and config["train"]["main"]["steps"] == 4
    records = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    logs = [r for r in records if "losses" in r]
    assert [r["step"] for r in logs] == [2, 4]
    assert set(logs[0]["losses"]) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    assert all(r["imgs_per_s"] > 0 for r in logs)
    assert [r["val"] for r in records if "val" in r] == [{"psnr": 12.5}] * 2
    assert result.val == {"psnr": 12.5}
    for step in (2, 4):
        img = read_image(tmp_path / "samples" / f"step_{step:06d}.png")
        assert img.shape == (64, 3 * 64, 3)  # input | output | target
    assert (tmp_path / "checkpoints" / "main_latest.pt").is_file()
    assert (tmp_path / "checkpoints" / "main_latest.prev.pt").is_file()
    assert load_checkpoint(tmp_path / "checkpoints" / "main_latest.prev.pt")["step"] == 2
    assert "finished at step 4" in (tmp_path / "log.txt").read_text()


def test_stages_share_a_run_folder(tmp_path):
    """A second stage gets its own checkpoint and sample names; config.json keeps both stages."""
    train(tiny_pix2pix(), PairedToy(), cfg(steps=1, sample_every=1), tmp_path, quiet=True, stage="global")
    train(tiny_pix2pix(), PairedToy(), cfg(steps=1, sample_every=1), tmp_path, quiet=True, stage="local")
    assert checkpoint_path(tmp_path, "global").is_file() and checkpoint_path(tmp_path, "local").is_file()
    assert (tmp_path / "samples" / "local_step_000001.png").is_file()
    assert set(json.loads((tmp_path / "config.json").read_text())["train"]) == {"global", "local"}
    with pytest.raises(UserError, match="does not fit network G"):
        other = tiny_pix2pix()
        other.G = build_generator("unet_256", n_downs=6, ngf=8)  # a different width
        train(other, PairedToy(), cfg(steps=2), tmp_path, resume=True, quiet=True, stage="global")


@pytest.mark.parametrize(("items", "settings", "message"), [
    (5, {"batch_size": 8}, "fewer than one batch of 8"),
    (0, {}, "dataset is empty"),
    (None, {"steps": 2, "decay_steps": -1}, "decay steps"),
    (None, {"device": "cuda:7"}, "cuda:7"),
], ids=["smaller-than-a-batch", "empty", "negative-decay", "missing-device"])
def test_bad_settings_and_data(tmp_path, items, settings, message):
    data = PairedToy() if items is None else PairedToy(n=items)
    with pytest.raises(UserError, match=message):
        train(tiny_pix2pix(), data, cfg(**settings), tmp_path, quiet=True)


def test_tensorboard_optional(tmp_path):
    """tensorboard=True writes event files when the package exists, else a logged warning."""
    train(tiny_pix2pix(), PairedToy(), cfg(steps=1, tensorboard=True), tmp_path, quiet=True)
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert "tensorboard package is not installed" in (tmp_path / "log.txt").read_text()
    else:
        assert any((tmp_path / "tensorboard" / "main").iterdir())


def test_old_config_and_checkpoint_still_load(tmp_path):
    """A TrainConfig dict missing newer fields (and with unknown ones) loads with defaults, and a
    checkpoint whose saved config is old resumes."""
    old = {"steps": 3, "lr": 1e-3, "retired_option": True}
    loaded = from_dict(TrainConfig, old)
    assert loaded.steps == 3 and loaded.lr == 1e-3 and loaded.channels_last is True
    assert to_dict(loaded)["decay_steps"] == TrainConfig().decay_steps

    train(tiny_pix2pix(), PairedToy(), cfg(steps=1), tmp_path, quiet=True)
    path = checkpoint_path(tmp_path)
    data = load_checkpoint(path)
    data["train_config"] = old
    data.pop("global_batch")
    save_checkpoint(path, data)
    result = train(tiny_pix2pix(), PairedToy(), cfg(steps=2), tmp_path, resume=True, quiet=True)
    assert result.start_step == 1 and result.step == 2


def test_lr_schedule_values():
    """Constant, then linear to zero over the last decay steps."""
    assert [lr_factor(s, 10, 4) for s in range(10)] == [1, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    assert [lr_factor(s, 3, 0) for s in range(3)] == [1, 1, 1]
    assert np.allclose([lr_factor(s, 4, 4) for s in range(5)], [1, 0.75, 0.5, 0.25, 0])
    assert lr_factor(0, 4, 10) == lr_factor(0, 4, 4)  # longer than the run: decays over all of it


def test_worker_processes_do_not_change_the_data(tmp_path):
    """Per-sample seeding: 2 DataLoader workers give bit-identical training to loading in-process,
    random augmentation included."""
    in_process, workers = tiny_pix2pix(), tiny_pix2pix()
    train(in_process, PairedToy(), cfg(steps=3), tmp_path / "a", quiet=True)
    train(workers, PairedToy(), cfg(steps=3, num_workers=2), tmp_path / "b", quiet=True)
    assert_same_state(state_of(in_process), state_of(workers))


def test_cpu_bf16_autocast_trains(tmp_path):
    """The CPU bf16 path runs, reports finite losses, keeps fp32 master weights and says so."""
    obj = tiny_pix2pix()
    result = train(obj, PairedToy(), cfg(steps=2, cpu_bf16=True), tmp_path, quiet=True)
    assert all(np.isfinite(v) for v in result.losses.values())
    assert all(p.dtype == torch.float32 for p in obj.G.parameters())
    assert result.precision == "bf16 autocast" and "(bf16 autocast," in (tmp_path / "log.txt").read_text()


def test_automatic_cpu_precision_is_decided_once_and_recorded(tmp_path):
    """cpu_bf16=None trains in bf16 exactly where the CPU has native bf16, and config.json, the
    checkpoint and the log record the decided precision (so a resume keeps it), not "automatic"."""
    from vid2vid_app.config import cpu_has_native_bf16

    result = train(tiny_pix2pix(), PairedToy(), cfg(steps=1, cpu_bf16=None), tmp_path, quiet=True)
    native = cpu_has_native_bf16()
    assert json.loads((tmp_path / "config.json").read_text())["train"]["main"]["cpu_bf16"] is native
    assert load_checkpoint(checkpoint_path(tmp_path))["train_config"]["cpu_bf16"] is native
    assert result.precision == ("bf16 autocast" if native else "fp32")
    assert f"({result.precision}," in (tmp_path / "log.txt").read_text()


def test_fp32_settings_agree_bit_for_bit_and_bf16_differs(tmp_path):
    """cpu_bf16=False trains exactly as amp=False did before CPU bf16 existed (the same weights,
    bit for bit, whatever amp says: amp is CUDA's switch), and cpu_bf16=True trains differently."""
    states = {}
    for name, settings in {"fp32": {"cpu_bf16": False}, "fp32, amp off": {"cpu_bf16": False, "amp": False},
                           "bf16": {"cpu_bf16": True}}.items():
        obj = tiny_pix2pix()
        train(obj, PairedToy(), cfg(steps=2, **settings), tmp_path / name.replace(", ", "_"), quiet=True)
        states[name] = state_of(obj)
    assert_same_state(states["fp32"], states["fp32, amp off"])
    assert not all(torch.equal(states["fp32"][k], states["bf16"][k]) for k in states["fp32"])


def test_compile_without_a_cpp_compiler_trains_eagerly_with_a_note(tmp_path, monkeypatch):
    """compile=True where Inductor would find no C++ compiler ($CXX names one that does not exist):
    the log says so, training runs eagerly, and the networks are plain modules afterwards."""
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-c++"))
    obj = tiny_pix2pix()
    result = train(obj, PairedToy(), cfg(steps=1, compile=True), tmp_path, quiet=True)
    log = (tmp_path / "log.txt").read_text()
    assert result.step == 1 and "needs a C++ compiler" in log and "torch.compile," not in log
    assert type(obj.G).__name__ == "UnetGenerator"


class OneConvObjective(Objective):
    """The smallest objective: one 3x3 conv + tanh from A to B under L1 (quick to compile)."""

    trainable = ("G",)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.G = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Tanh())

    def train_step(self, batch, optimizers, amp=None):
        amp = amp or Amp.off()
        zero_grad(optimizers["G"])
        with amp.autocast():
            fake = self.G(batch["A"])
            loss = F.l1_loss(fake.float(), batch["B"])
        amp.backward(loss)
        amp.step(optimizers["G"])
        amp.update()
        self._keep_images(batch["A"], fake, batch["B"])
        return to_floats({"L1": loss})


@pytest.mark.slow
def test_compile_trains_and_leaves_plain_modules(tmp_path):
    """compile=True (with the C++ compiler this machine has) trains two steps in bf16 autocast to
    the losses of eager training up to rounding, names torch.compile in the log and hands the
    network back unwrapped."""
    from vid2vid_app.device import cpp_compiler

    if cpp_compiler() is None:
        pytest.skip("no C++ compiler for torch.compile's CPU backend")
    compiled, eager = OneConvObjective(), OneConvObjective()
    result = train(compiled, PairedToy(), cfg(steps=2, compile=True, cpu_bf16=True), tmp_path / "c", quiet=True)
    reference = train(eager, PairedToy(), cfg(steps=2, cpu_bf16=True), tmp_path / "e", quiet=True)
    assert "(bf16 autocast, torch.compile," in (tmp_path / "c" / "log.txt").read_text()
    assert isinstance(compiled.G, torch.nn.Sequential)
    assert result.losses["L1"] == pytest.approx(reference.losses["L1"], rel=0.02)


@pytest.mark.parametrize("deterministic", [True, False])
def test_deterministic_setting_holds_while_the_loop_runs(tmp_path, deterministic):
    """``deterministic`` turns torch.use_deterministic_algorithms on around the loop (seen from the
    data loading inside it) and the previous state comes back afterwards."""
    seen = []
    data = PairedToy(on_call=lambda _n: seen.append(torch.are_deterministic_algorithms_enabled()))
    assert not torch.are_deterministic_algorithms_enabled()
    train(tiny_pix2pix(), data, cfg(steps=2, deterministic=deterministic), tmp_path, quiet=True)
    assert seen and set(seen) == {deterministic}
    assert not torch.are_deterministic_algorithms_enabled()


def test_stage_config_takes_every_run_setting():
    """TrainConfig.for_stage copies each run setting (all set away from their defaults here)."""
    from dataclasses import fields

    from vid2vid_app.config import TrainSettings

    changed = {}
    for f in fields(TrainSettings):
        default = getattr(TrainSettings(), f.name)
        changed[f.name] = (not default if isinstance(default, bool) else True if default is None
                           else "cuda:1" if f.name == "device"
                           else default + 1 if isinstance(default, int) else default / 2)
    settings = TrainSettings(**changed)
    stage = TrainConfig.for_stage(settings, 30, 10, batch_size=9)
    assert (stage.steps, stage.decay_steps, stage.batch_size) == (30, 10, 9)
    assert {k: getattr(stage, k) for k in changed if k != "batch_size"} == {
        k: v for k, v in changed.items() if k != "batch_size"}
