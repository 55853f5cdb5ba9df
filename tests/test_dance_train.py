"""`dance train`: the command end to end (runs, refusals, resume, the face stage, the model file it
writes) and the training stage's settings. Data preparation, the dataset, the config and the model
file have their own test files (test_dance_prepare.py, _dataset, _config, _model).

Real parts throughout: MediaPipe on clips cut from the bundled sample (tests/dance_utils.py), real
training steps of the tiny preset, the real CLI through click's CliRunner.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from dance_utils import make_dance_clips, run_cli

from vid2vid_app.config import to_dict
from vid2vid_app.dance.config import make_config
from vid2vid_app.dance.dataset import StagePoses, TemporalPairDataset
from vid2vid_app.dance.model import DanceModel, read_model_file
from vid2vid_app.dance.prepare import prepare_dance_data
from vid2vid_app.imaging import to_tensor
from vid2vid_app.runs import resolve_model_path

TINY = ["--preset", "tiny", "--quiet"]


# ------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def clips(bundled_samples, tmp_path_factory) -> dict[str, Path]:
    return make_dance_clips(bundled_samples, tmp_path_factory.mktemp("clips"))


# ------------------------------------------------------------------------------------- CLI

@pytest.mark.slow
def test_train_writes_a_model_that_loads(clips, tmp_path):
    """`dance train` on a real clip writes RUNS/NAME/model.pt; DanceModel.load rebuilds it and it
    renders and generates at its resolution; the summary names steps, precision (the CPU's default:
    bf16 where it has native bf16) and validation metrics."""
    from vid2vid_app.config import cpu_has_native_bf16

    runs = tmp_path / "runs"
    result = run_cli(["train", str(clips["short"]), "--name", "kid", "--runs-dir", str(runs), "--preset", "tiny",
                      "--stages", "global,local", "--steps", "global=3,local=2"])
    assert result.exit_code == 0, result.output
    precision = "bf16 autocast" if cpu_has_native_bf16() else "fp32"
    assert re.search(rf"global: 3 steps, [\d.]+ s, {precision}, val_psnr", result.output), result.output
    assert "local: 2 steps" in result.output
    assert "val_psnr" in result.output
    model_path = runs / "kid" / "model.pt"
    assert resolve_model_path("kid", runs, "dance") == model_path
    model = DanceModel.load(model_path, "cpu")
    assert model.resolution == (128, 256) and model.target_size == (180, 320)
    assert model.stage == "local" and model.face_generator is None
    assert model.config["preset"] == "tiny"
    pose = model.render(np.load(runs / "kid" / "data" / "poses.npz")["keypoints"][10])
    assert pose.shape == (256, 128, 3) and pose.max() > 0
    out = model.generate(to_tensor(pose))
    assert out.shape == (1, 3, 256, 128) and out.min() >= -1 and out.max() <= 1
    out2 = model.generate(to_tensor(pose), out)
    assert not torch.equal(out, out2)  # the previous frame is an input
    stats = [json.loads(line) for line in (runs / "kid" / "global" / "stats.jsonl").read_text().splitlines()]
    assert any("val" in s and "val_psnr" in s["val"] for s in stats)
    # The tiny preset has no VGG: its L1 term is logged as such, not through the VGG slot.
    losses = [s["losses"] for s in stats if "losses" in s]
    assert losses and all("G_L1" in r and "G_VGG" not in r for r in losses)


@pytest.mark.slow
def test_existing_run_is_refused_without_overwrite(clips, tmp_path):
    runs = tmp_path / "runs"
    args = ["train", str(clips["short"]), "--name", "kid", "--runs-dir", str(runs), *TINY, "--stages", "global",
            "--steps", "2"]
    assert run_cli(args).exit_code == 0
    first = (runs / "kid" / "model.pt").stat().st_mtime_ns
    again = run_cli(args)
    assert again.exit_code == 1
    assert "already exists" in again.output and "--resume" in again.output and "--overwrite" in again.output
    assert "Traceback" not in again.output
    assert (runs / "kid" / "model.pt").stat().st_mtime_ns == first  # untouched
    replaced = run_cli([*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert (runs / "kid" / "model.pt").stat().st_mtime_ns != first


def test_interrupted_training_resumes(clips, tmp_path, monkeypatch):
    """Ctrl-C in the middle of the global stage (simulated from the dataset after 3 steps) leaves
    a checkpoint and no model; --resume continues from that step and finishes the model."""
    runs = tmp_path / "runs"
    args = ["train", str(clips["short"]), "--name", "kid", "--runs-dir", str(runs), *TINY, "--stages", "global",
            "--steps", "6", "--batch-size", "1"]
    original = TemporalPairDataset.__getitem__
    calls = {"n": 0}

    def interrupting(self, i):
        calls["n"] += 1
        if calls["n"] == 4:  # batch size 1: the 4th item is fetched for step 4
            raise KeyboardInterrupt
        return original(self, i)

    monkeypatch.setattr(TemporalPairDataset, "__getitem__", interrupting)
    stopped = run_cli(args)
    assert stopped.exit_code == 1
    assert "--resume" in stopped.output and "Traceback" not in stopped.output
    assert not (runs / "kid" / "model.pt").exists()
    ckpt = torch.load(runs / "kid" / "global" / "checkpoints" / "global_latest.pt", weights_only=True)
    assert ckpt["step"] == 3

    monkeypatch.setattr(TemporalPairDataset, "__getitem__", original)
    both = run_cli([*args, "--resume", "--overwrite"])
    assert both.exit_code == 1 and "give one of them" in both.output
    # A changed network setting cannot apply to a half-trained run: it is named, and not used.
    resumed = run_cli([*args, "--resume", "--ngf", "12"])
    assert resumed.exit_code == 0, resumed.output
    assert "not used: ngf" in resumed.output
    assert (runs / "kid" / "model.pt").is_file()
    log = (runs / "kid" / "global" / "log.txt").read_text()
    assert "resuming at step 3" in log
    assert torch.load(runs / "kid" / "global" / "generator.pt", weights_only=True)["meta"]["steps"] == 6


def test_too_few_frames_with_a_person(clips, tmp_path):
    result = run_cli(["train", str(clips["few"]), "--name", "few", "--runs-dir", str(tmp_path), *TINY])
    assert result.exit_code == 1
    assert "only 5 of 25 frames" in result.output and "at least 8" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "few").exists()  # nothing left behind to block the next try


def test_no_person_at_all(clips, tmp_path):
    result = run_cli(["train", str(clips["empty"]), "--name", "nobody", "--runs-dir", str(tmp_path), *TINY])
    assert result.exit_code == 1
    assert "no person was detected" in result.output and "12 frames" in result.output


def test_dry_run_prints_the_config_and_writes_nothing(clips, tmp_path):
    result = run_cli(["train", str(clips["short"]), "--name", "dry", "--runs-dir", str(tmp_path), "--preset", "tiny",
                      "--ngf", "12", "--size", "64x32", "--dry-run"])
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.output)
    assert cfg["ngf"] == 12 and cfg["size"] == [64, 32] and cfg["resolution"] == [64, 32]  # explicit: not turned
    assert cfg["stages"] == ["global"]
    assert cfg["steps"]["global"] == make_config("tiny").steps["global"]
    assert not cfg["train"]["tensorboard"]
    assert not (tmp_path / "dry").exists()


def test_precision_and_tensorboard_flags_reach_the_config(clips, tmp_path):
    """Mixed precision by default (CUDA's, and bf16 where the CPU has native bf16); --fp32 turns
    off both."""
    from vid2vid_app.config import cpu_has_native_bf16

    common = ["train", str(clips["short"]), "--name", "dry", "--runs-dir", str(tmp_path), "--dry-run"]
    default = json.loads(run_cli(common).output)["train"]
    assert default["amp"] is True and default["cpu_bf16"] is cpu_has_native_bf16()
    cfg = json.loads(run_cli([*common, "--fp32", "--tensorboard"]).output)
    assert cfg["train"]["amp"] is False and cfg["train"]["cpu_bf16"] is False and cfg["train"]["tensorboard"] is True


@pytest.mark.parametrize("option", ["--cpu-bf16", "--compile", "--deterministic", "--sync-bn", None])
def test_run_setting_flags_reach_the_stage_training_config(clips, tmp_path, option):
    """--dry-run shows each flag under "train", and the loop's TrainConfig built from that config has
    it; without the flag it stays off, except CPU bf16, which is on by default where the CPU has
    native bf16. --cpu-bf16 is the CPU's mixed precision only (the tiny preset keeps CUDA's amp
    off) and contradicts --fp32."""
    from vid2vid_app.config import cpu_has_native_bf16, from_dict
    from vid2vid_app.dance.config import DanceConfig
    from vid2vid_app.dance.train import train_config

    common = ["train", str(clips["short"]), "--name", "dry", "--runs-dir", str(tmp_path), *TINY, "--dry-run"]
    shown = json.loads(run_cli([*common, *([option] if option else [])]).output)["train"]
    stage = train_config(from_dict(DanceConfig, {"train": shown}), "global")
    flags = {"--compile": "compile", "--deterministic": "deterministic", "--sync-bn": "sync_bn"}
    for flag, key in flags.items():
        assert shown[key] is getattr(stage, key) is (flag == option), key
    assert shown["cpu_bf16"] is stage.cpu_bf16 is (option == "--cpu-bf16" or cpu_has_native_bf16())
    assert stage.amp is False
    both = run_cli([*common, "--cpu-bf16", "--fp32"])
    assert both.exit_code == 1 and "contradicts --fp32" in both.output


@pytest.mark.slow
def test_run_setting_flags_reach_the_loop(clips, tmp_path):
    """A real one-step run with the three flags: the stage's config.json (what the loop ran with)
    records them, its log names the precision, and training in bf16 on the CPU writes a model."""
    runs = tmp_path / "runs"
    result = run_cli(["train", str(clips["short"]), "--name", "f", "--runs-dir", str(runs), *TINY, "--steps", "1",
                      "--cpu-bf16", "--deterministic", "--sync-bn"])
    assert result.exit_code == 0, result.output
    ran = json.loads((runs / "f" / "global" / "config.json").read_text())["train"]["global"]
    assert ran["cpu_bf16"] and ran["deterministic"] and ran["sync_bn"] and not ran["amp"]
    assert "(bf16 autocast," in (runs / "f" / "global" / "log.txt").read_text()
    assert (runs / "f" / "model.pt").is_file()


def test_explicit_missing_vgg_weights_is_an_error(clips, tmp_path):
    result = run_cli(["train", str(clips["short"]), "--name", "v", "--runs-dir", str(tmp_path), *TINY,
                      "--vgg-weights", str(tmp_path / "missing.pth"), "--steps", "1"])
    assert result.exit_code == 1
    assert "missing.pth" in result.output and "does not exist" in result.output
    assert not (tmp_path / "v").exists()  # refused before any work


def test_preset_vgg_without_weights_falls_back_with_a_note(monkeypatch):
    """The standard preset asks for VGG; with no weight file anywhere it trains without it and
    says so (simulated lookup that finds nothing; the real one finds ../shared/weights here)."""
    from vid2vid_app.dance import train as dance_training

    monkeypatch.setattr("vid2vid_app.models.losses.find_vgg_weights", lambda *a, **k: None)
    notes: list[str] = []
    assert dance_training.make_vgg(make_config("standard"), explicit=False, notes=notes) is None
    assert notes and "without the VGG loss" in notes[0]


@pytest.mark.slow
def test_face_stage_and_old_model_files(clips, tmp_path):
    """--face trains the face stage; its model refines the face box only. A model file whose
    config lacks newer fields still loads with defaults."""
    runs = tmp_path / "runs"
    result = run_cli(["train", str(clips["short"]), "--name", "f", "--runs-dir", str(runs), *TINY,
                      "--stages", "global", "--face", "--steps", "global=2,face=2"])
    assert result.exit_code == 0, result.output
    model = DanceModel.load(runs / "f" / "model.pt", "cpu")
    assert model.face_generator is not None and model.resolution == (64, 128)
    kp = np.load(runs / "f" / "data" / "poses.npz")["keypoints"][5]
    box = model.face_box(kp)
    assert box is not None
    pose = to_tensor(model.render(kp))
    plain = model.generate(pose)
    refined = model.generate(pose, boxes=box[None])
    x0, y0, x1, y1 = (int(v) for v in box)
    outside = torch.ones_like(plain, dtype=torch.bool)
    outside[..., y0:y1, x0:x1] = False
    assert torch.equal(plain[outside], refined[outside])

    # Transfer places the face box exactly as training did: one side for the whole target (stored
    # in the model file), centred on each frame's face in the same canvas.
    payload = read_model_file(runs / "f" / "model.pt")
    side = payload["data"]["face_side"]
    assert side and (box[2] - box[0], box[3] - box[1]) == (side, side)
    cfg = model.config
    data = prepare_dance_data([clips["short"]], runs / "f" / "data", model.resolution,
                              detect_max_side=cfg["detect_max_side"], smooth_method=cfg["smooth_method"],
                              max_gap=cfg["max_gap"], min_frames=cfg["min_train_frames"],
                              landmarks=cfg["landmarks"], quiet=True)
    assert data.reused_poses and data.reused_frames
    trained = StagePoses(data, 1, model.render_style)
    for t in np.flatnonzero(data.valid):
        expected, got = trained.face_box(int(t), side), model.face_box(data.keypoints[t])
        assert (expected is None) == (got is None)
        if got is not None:
            np.testing.assert_array_equal(got, expected)
    face_losses = [json.loads(line).get("losses") for line in (runs / "f" / "face" / "stats.jsonl").read_text()
                   .splitlines()]
    assert any(face_losses) and all("G_L1" in r and "G_VGG" not in r for r in face_losses if r)

    for key in ("render_thickness", "face_box_frac", "val_max_frames"):
        payload["config"].pop(key)
    # The 0.1 file format (a flat dict of kind "vid2vid_app.dance_model") with an older, shorter config.
    torch.save({**payload, "kind": "vid2vid_app.dance_model", "format_version": 1}, tmp_path / "old.pt")
    old = DanceModel.load(tmp_path / "old.pt", "cpu")
    assert old.config["face_box_frac"] == 2.0 and old.config["ngf"] == model.config["ngf"]


def test_loss_weights_reach_the_objectives():
    """The preset's L1 weight goes to the objectives' own L1 term; the VGG slot holds only the VGG
    (or nothing). A saved config from before a loss field existed loads with its default."""
    from vid2vid_app.config import from_dict
    from vid2vid_app.dance.config import DanceConfig
    from vid2vid_app.dance.train import loss_kwargs

    tiny = loss_kwargs(make_config("tiny"), None)
    assert tiny["lambda_l1"] == 20.0 and tiny["vgg"] is None and tiny["lambda_vgg"] == 0.0
    vgg = torch.nn.Identity()
    standard = loss_kwargs(make_config("standard"), vgg)
    assert standard["vgg"] is vgg and standard["lambda_vgg"] == 10.0 and standard["lambda_l1"] == 0.0
    old = to_dict(make_config("tiny"))
    old.pop("lambda_l1")
    assert from_dict(DanceConfig, old).lambda_l1 == 0.0



def test_interrupt_hint_quotes_the_whole_command(clips, tmp_path, monkeypatch):
    import vid2vid_app.dance.train as train_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train_dance", interrupted)
    result = run_cli(["train", str(clips["short"]), "--name", "kid", "--runs-dir", str(tmp_path / "runs"), *TINY])
    assert result.exit_code == 1
    assert (f"continue with `dance train {clips['short']} --name kid --resume --runs-dir {tmp_path / 'runs'}`."
            in result.output)


def test_dry_run_lists_the_videos_and_help_shows_default_steps(clips, tmp_path):
    result = run_cli(["train", str(clips["short"]), str(clips["few"]), "--name", "dry", "--runs-dir", str(tmp_path),
                      *TINY, "--dry-run"])
    assert json.loads(result.output)["videos"] == [str(clips["short"]), str(clips["few"])]
    help_text = " ".join(run_cli(["train", "--help"]).output.split())
    tiny, standard = make_config("tiny").steps, make_config("standard").steps
    assert f"tiny: global={tiny['global']}, local={tiny['local']}, face={tiny['face']}" in help_text
    assert f"standard: global={standard['global']}, local={standard['local']}" in help_text


def test_too_few_frames_all_with_a_person_says_the_count_once(bundled_samples, tmp_path):
    """A clip whose every frame shows the person but which is too short: not "only 3 of 3 frames"."""
    from video_utils import make_test_clip

    from vid2vid_app.dance.prepare import prepare_dance_data
    from vid2vid_app.errors import UserError
    from vid2vid_app.video import iter_frames

    frames = list(iter_frames(bundled_samples / "target_cam01.mp4", end=3, size=(180, 320)))
    clip = make_test_clip(tmp_path / "three.mp4", frames, 30)
    with pytest.raises(UserError) as info:
        prepare_dance_data([clip], tmp_path / "data", (64, 128), min_frames=8, quiet=True)
    assert str(info.value) == f"{clip} has only 3 frames, each showing a person; at least 8 are needed to train."
