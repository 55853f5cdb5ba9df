"""`dance train`: data preparation and its cache, temporal pairs, the model file, the CLI.

Real parts throughout: MediaPipe on clips cut from the bundled sample (samples/target_cam01.mp4, a
real 360x640 portrait recording), real training steps of the tiny preset, the real CLI through
click's CliRunner. Clips are short (40 frames, half size) to keep the suite fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from video_utils import make_test_clip

from vid2vid_app.cli.dance import dance
from vid2vid_app.config import to_dict
from vid2vid_app.dance.config import canvas_size, final_canvas, make_config, parse_steps
from vid2vid_app.dance.dataset import StagePoses, TemporalPairDataset, downscale_frame
from vid2vid_app.dance.model import DanceModel, read_model_file
from vid2vid_app.runs import resolve_model_path
from vid2vid_app.dance.prepare import prepare_dance_data, split_frames
from vid2vid_app.errors import UserError
from vid2vid_app.imaging import to_tensor
from vid2vid_app.pose import RenderStyle
from vid2vid_app.video import iter_frames, probe

TINY = ["--preset", "tiny", "--quiet"]


# ------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def clips(bundled_samples, tmp_path_factory) -> dict[str, Path]:
    """Clips derived from the bundled real sample:

    - ``short``: its first 40 frames at 180x320 (portrait);
    - ``landscape``: 20 of those frames centred on a 640x360 black canvas (a landscape video of the
      same upright person);
    - ``few``: 5 frames with the person followed by 20 black frames;
    - ``empty``: 12 black frames (nobody).
    """
    root = tmp_path_factory.mktemp("clips")
    src = bundled_samples / "target_cam01.mp4"
    frames = list(iter_frames(src, end=40, size=(180, 320)))
    out = {"short": make_test_clip(root / "short.mp4", frames, 60)}
    land = []
    for f in frames[:20]:
        canvas = np.zeros((360, 640, 3), np.uint8)
        canvas[20:340, 230:410] = f
        land.append(canvas)
    out["landscape"] = make_test_clip(root / "landscape.mp4", land, 60)
    black = np.zeros((320, 180, 3), np.uint8)
    out["few"] = make_test_clip(root / "few.mp4", frames[:5] + [black] * 20, 60)
    out["empty"] = make_test_clip(root / "empty.mp4", [black] * 12, 60)
    out["other_size"] = make_test_clip(root / "other.mp4", [np.zeros((64, 96, 3), np.uint8)] * 4, 60)
    return out


@pytest.fixture(scope="module")
def prepared(clips, tmp_path_factory):
    """The short clip prepared once at a 64x128 canvas."""
    root = tmp_path_factory.mktemp("prep")
    data = prepare_dance_data([clips["short"]], root / "data", (64, 128), quiet=True)
    return data


def run_cli(args: list[str]):
    result = CliRunner().invoke(dance, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# ------------------------------------------------------------------------------------- data prep

def test_prepared_arrays_have_the_right_shapes_and_letterbox(prepared, clips):
    """Frames are stored letterboxed at the canvas: 180x320 into 64x128 keeps the aspect
    (scale 64/180, content 64x114, 7 black rows above and below); keypoints map the same way."""
    frames = prepared.frames
    assert frames.shape == (40, 128, 64, 3) and frames.dtype == np.uint8
    assert prepared.keypoints.shape == (40, 33, 3)
    assert prepared.target_size == (180, 320)
    box = prepared.letterbox
    assert (box.x0, box.y0, box.content_w, box.content_h) == (0, 7, 64, 114)
    assert box.scale == pytest.approx(64 / 180)
    assert frames[:, :7].max() == 0 and frames[:, 121:].max() == 0  # padding rows are black
    assert frames[:, 7:121].mean() > 40  # the picture is there
    # Canvas keypoints = original * scale + offset, and the nose lies inside the content area.
    np.testing.assert_allclose(prepared.canvas_keypoints[..., 1], prepared.keypoints[..., 1] * box.scale + 7,
                               rtol=1e-5)
    nose = prepared.canvas_keypoints[:, 0]
    assert prepared.valid.all()
    assert ((nose[:, 1] > 7) & (nose[:, 1] < 121) & (nose[:, 0] > 0) & (nose[:, 0] < 64)).all()
    # The stored frame equals the letterboxed decoded frame.
    from vid2vid_app.imaging import letterbox

    first = next(iter_frames(clips["short"]))
    assert np.abs(letterbox(first, 64, 128)[0].astype(int) - frames[0].astype(int)).max() <= 1


def test_rerun_reuses_the_cache_without_detecting(prepared, clips, monkeypatch):
    """A second call with the same videos neither decodes nor detects (files untouched); a new
    canvas size re-letterboxes the frames but reuses the detected poses."""
    root = prepared.root
    mtimes = {p.name: p.stat().st_mtime_ns for p in root.iterdir()}

    def no_detection(*args, **kwargs):
        raise AssertionError("the pose detector ran again")

    monkeypatch.setattr("vid2vid_app.pose.detector.detect_sequence", no_detection)
    again = prepare_dance_data([clips["short"]], root, (64, 128), quiet=True)
    assert again.reused_poses and again.reused_frames
    assert {p.name: p.stat().st_mtime_ns for p in root.iterdir()} == mtimes
    np.testing.assert_array_equal(again.keypoints, prepared.keypoints)

    bigger = prepare_dance_data([clips["short"]], root, (128, 256), quiet=True)
    assert bigger.reused_poses and not bigger.reused_frames
    assert bigger.frames.shape == (40, 256, 128, 3)
    assert (root / "poses.npz").stat().st_mtime_ns == mtimes["poses.npz"]


def test_landscape_video_gets_a_landscape_canvas(clips, tmp_path):
    """Preset sizes are turned to the video's orientation; a landscape clip fills a landscape canvas."""
    cfg = make_config("tiny")
    info = probe(clips["landscape"])
    assert canvas_size(cfg, (info.width, info.height)) == (128, 64)
    assert canvas_size(cfg, (180, 320)) == (64, 128)
    assert final_canvas(cfg, (info.width, info.height)) == (128, 64)  # tiny: global stage only
    with_local = make_config("tiny", stages=("global", "local"))
    assert final_canvas(with_local, (info.width, info.height)) == (256, 128)
    data = prepare_dance_data([clips["landscape"]], tmp_path / "data", (128, 64), quiet=True, min_frames=4)
    assert data.frames.shape == (20, 64, 128, 3)
    box = data.letterbox
    assert (box.x0, box.y0, box.content_w, box.content_h) == (7, 0, 114, 64)  # 640x360 -> 114x64
    assert data.valid.sum() >= 18


def test_target_videos_of_different_sizes_are_refused(clips, tmp_path):
    with pytest.raises(UserError, match=r"180x320.*96x64|differ in size"):
        prepare_dance_data([clips["short"], clips["other_size"]], tmp_path / "d", (64, 128), quiet=True)
    assert not (tmp_path / "d" / "poses.json").exists()


def test_split_holds_out_the_end_and_never_pairs_across_videos():
    valid = np.ones(20, bool)
    valid[5] = False
    segment = np.array([0] * 10 + [1] * 10)
    pairs, val = split_frames(valid, segment, 0.2)
    np.testing.assert_array_equal(val, np.arange(16, 20))  # the last 20 %
    assert 4 not in pairs and 5 not in pairs  # pairs (4,5), (5,6) touch the missing frame 5
    assert 9 not in pairs  # (9, 10) would cross from video 0 to video 1
    assert pairs.max() == 14  # (14, 15) is the last pair before the held-out frames
    assert len(pairs) == 15 - 3


def test_temporal_pairs_dataset_items(prepared):
    """Items hold consecutive frames and their stick figures in [-1, 1]; factor 2 averages 2x2
    blocks and halves the keypoints."""
    pairs, _ = prepared.split(0.1)
    ds = TemporalPairDataset(prepared, pairs, RenderStyle(), factor=1)
    item = ds[3]
    t = int(pairs[3])
    for key in ("pose0", "pose1", "frame0", "frame1"):
        assert item[key].shape == (3, 128, 64) and item[key].dtype == torch.float32
        assert -1.0 <= item[key].min() and item[key].max() <= 1.0
    np.testing.assert_allclose(item["frame1"].numpy(), to_tensor(np.array(prepared.frames[t + 1]))[0].numpy())
    assert (item["pose0"] > -1).any()  # the stick figure is drawn
    half = TemporalPairDataset(prepared, pairs, RenderStyle(), factor=2, face_boxes=True)[3]
    assert half["frame0"].shape == (3, 64, 32)
    block = np.array(prepared.frames[t][:2, :2], dtype=np.float64).mean(axis=(0, 1))
    np.testing.assert_allclose((half["frame0"][:, 0, 0].numpy() + 1) * 127.5, np.round(block), atol=1e-3)
    x0, y0, x1, y1 = half["box0"].tolist()
    assert x1 - x0 == y1 - y0 > 0 and 0 <= x0 and x1 <= 32 and 0 <= y0 and y1 <= 64


def test_pose_jitter_moves_the_stick_figures_only(prepared):
    """Jitter changes the drawn poses but not the frames, and is reproducible under one seed
    (the training loop seeds numpy per sample)."""
    pairs, _ = prepared.split(0.1)
    plain = TemporalPairDataset(prepared, pairs, RenderStyle())[0]
    jittered = TemporalPairDataset(prepared, pairs, RenderStyle(), pose_jitter=0.05)
    np.random.seed(3)
    a = jittered[0]
    np.random.seed(3)
    b = jittered[0]
    assert torch.equal(a["pose0"], b["pose0"]) and torch.equal(a["pose1"], b["pose1"])
    assert not torch.equal(a["pose0"], plain["pose0"])
    assert torch.equal(a["frame0"], plain["frame0"]) and torch.equal(a["frame1"], plain["frame1"])


def test_downscale_frame_is_a_block_mean():
    frame = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    out = downscale_frame(frame, 2)
    assert out.shape == (2, 3, 3)
    assert out[0, 0, 0] == round(np.mean([frame[0, 0, 0], frame[0, 1, 0], frame[1, 0, 0], frame[1, 1, 0]]))


def test_config_parsing_and_validation():
    assert parse_steps("7", {})["local"] == 7
    assert parse_steps("global=5,face=2", {"global": 1, "local": 3}) == {"global": 5, "local": 3, "face": 2}
    with pytest.raises(UserError, match="--steps"):
        parse_steps("lots", {})
    with pytest.raises(UserError, match="multiples of 8"):
        make_config("tiny", size=(100, 64))
    with pytest.raises(UserError, match="include global"):
        make_config("tiny", stages=("local",))


# ------------------------------------------------------------------------------------- CLI

def test_train_writes_a_model_that_loads(clips, tmp_path):
    """`dance train` on a real clip writes RUNS/NAME/model.pt; DanceModel.load rebuilds it and it
    renders and generates at its resolution; the summary names steps and validation metrics."""
    runs = tmp_path / "runs"
    result = run_cli(["train", str(clips["short"]), "--name", "kid", "--runs-dir", str(runs), "--preset", "tiny",
                      "--stages", "global,local", "--steps", "global=3,local=2"])
    assert result.exit_code == 0, result.output
    assert "global: 3 steps" in result.output and "local: 2 steps" in result.output
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
    assert not cfg["tensorboard"]
    assert not (tmp_path / "dry").exists()


def test_precision_and_tensorboard_flags_reach_the_config(clips, tmp_path):
    common = ["train", str(clips["short"]), "--name", "dry", "--runs-dir", str(tmp_path), "--dry-run"]
    assert json.loads(run_cli(common).output)["amp"] is True  # standard preset: mixed precision on CUDA
    cfg = json.loads(run_cli([*common, "--fp32", "--tensorboard"]).output)
    assert cfg["amp"] is False and cfg["tensorboard"] is True


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
                              max_gap=cfg["max_gap"], min_frames=cfg["min_train_frames"], quiet=True)
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


def test_unknown_model_name_lists_the_models(tmp_path):
    (tmp_path / "alice").mkdir()
    torch.save({}, tmp_path / "alice" / "model.pt")
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(UserError, match=r"unknown model 'bob'.*alice"):
        resolve_model_path("bob", tmp_path, "dance")
    with pytest.raises(UserError, match="--resume"):
        resolve_model_path("unfinished", tmp_path, "dance")
    with pytest.raises(UserError, match="not a `dance train` model"):
        DanceModel.load(tmp_path / "alice" / "model.pt")
    assert resolve_model_path(tmp_path / "alice", None, "dance") == tmp_path / "alice" / "model.pt"


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


def test_model_config_round_trip_keeps_every_field():
    cfg = make_config("tiny", stages=("global", "face"))
    from vid2vid_app.config import from_dict
    from vid2vid_app.dance.config import DanceConfig

    assert to_dict(from_dict(DanceConfig, to_dict(cfg))) == to_dict(cfg)
