"""The person layer end to end: `dance train` computes person masks and a background plate once,
trains a colour + alpha generator (or falls back to full frames for a moving camera, with a
note), stores the plate in the model file; `dance transfer` swaps the background and writes the
matte. Real parts: clips cut from the bundled real recording, MediaPipe, tiny training steps,
the CLI through click's CliRunner.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from dance_utils import make_dance_clips, run_cli
from video_utils import make_test_clip

from vid2vid_app.dance.model import DanceModel, read_model_file
from vid2vid_app.imaging import to_tensor
from vid2vid_app.video import iter_frames

TINY = ["--preset", "tiny", "--quiet", "--workers", "1"]


@pytest.fixture(scope="module")
def clips(bundled_samples, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    out = make_dance_clips(bundled_samples, root)
    # The same recording seen by a camera that pans across the room: a 180x320 window sliding 60
    # pixels (a sixth of the width) over the 40 frames.
    frames = list(iter_frames(bundled_samples / "target_cam01.mp4", end=40))
    out["panned"] = make_test_clip(root / "panned.mp4",
                                   [np.ascontiguousarray(f[100 : 420, int(1.5 * i) : int(1.5 * i) + 180])
                                    for i, f in enumerate(frames)], 60)
    return out


@pytest.fixture(scope="module")
def layer_run(clips, tmp_path_factory) -> Path:
    """A person-layer run (the tiny preset's default) on the short real clip: RUNS folder.
    Training it takes several seconds, so every test that uses it is marked slow."""
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli(["train", str(clips["short"]), "--name", "pl", "--runs-dir", str(runs), *TINY, "--steps", "3"])
    assert result.exit_code == 0, result.output
    return runs


# ------------------------------------------------------------------------------------- training

@pytest.mark.slow
def test_train_stores_masks_plate_and_a_four_channel_generator(layer_run):
    run = layer_run / "pl"
    data = run / "data"
    w, h = 64, 128
    assert (data / f"layer_{w}x{h}.json").is_file()
    masks = np.fromfile(data / f"masks_{w}x{h}.u8", np.uint8).reshape(-1, h, w)
    assert len(masks) == 40 and 0.02 < (masks > 127).mean() < 0.3  # one person, a small part of the frame
    payload = read_model_file(run / "model.pt")
    assert payload["generator_config"]["out_channels"] == 4
    plates = payload["plates"]
    assert plates.dtype == torch.uint8 and tuple(plates.shape) == (1, h, w, 3)
    with np.load(data / f"plates_{w}x{h}.npz") as z:
        np.testing.assert_array_equal(plates.numpy(), z["plates"])
    # The plate is the room: where no frame shows the person it equals the frames (video noise aside).
    frames = np.fromfile(data / f"frames_{w}x{h}.u8", np.uint8).reshape(-1, h, w, 3)
    empty = (masks < 10).all(axis=0)
    assert np.median(np.abs(frames[0].astype(int) - plates[0].numpy().astype(int))[empty]) <= 3


@pytest.mark.slow
def test_person_layer_model_composites_over_its_plate(layer_run):
    model = DanceModel.load(layer_run / "pl" / "model.pt")
    assert model.person_layer and model.plate.shape == (1, 3, 128, 64)
    kp = np.load(layer_run / "pl" / "data" / "poses.npz")["keypoints"][5]
    pose = to_tensor(model.render(kp))
    frame, colour, alpha = model.generate_layers(pose)
    assert alpha.shape == (1, 1, 128, 64) and 0 <= float(alpha.min()) and float(alpha.max()) <= 1
    torch.testing.assert_close(frame, (model.plate + alpha * (colour - model.plate)).clamp(-1, 1))
    torch.testing.assert_close(model.generate(pose), frame)
    # The previous composite is an input.
    assert not torch.equal(model.generate(pose, frame), frame)


@pytest.mark.slow
def test_resume_reuses_masks_and_plate(layer_run, clips):
    marker = layer_run / "pl" / "data" / "layer_64x128.json"
    before = marker.stat().st_mtime_ns
    result = run_cli(["train", str(clips["short"]), "--name", "pl", "--runs-dir", str(layer_run), *TINY,
                      "--steps", "3", "--resume"])
    assert result.exit_code == 0, result.output
    assert marker.stat().st_mtime_ns == before


def test_full_frame_skips_the_layer(clips, tmp_path):
    runs = tmp_path / "runs"
    result = run_cli(["train", str(clips["short"]), "--name", "ff", "--runs-dir", str(runs), "--preset", "tiny",
                      "--workers", "1", "--steps", "2", "--full-frame"])
    assert result.exit_code == 0, result.output
    assert "full frame" in result.output
    assert not list((runs / "ff" / "data").glob("masks_*"))
    payload = read_model_file(runs / "ff" / "model.pt")
    assert payload["plates"] is None and payload["generator_config"]["out_channels"] == 3
    assert not DanceModel.load(runs / "ff" / "model.pt").person_layer


@pytest.mark.slow
def test_a_moving_camera_falls_back_to_full_frames_with_the_reason(clips, tmp_path):
    runs = tmp_path / "runs"
    result = run_cli(["train", str(clips["panned"]), "--name", "pan", "--runs-dir", str(runs), "--preset", "tiny",
                      "--workers", "1", "--steps", "2"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "full-frame generation instead of the person layer" in line]
    assert len(notes) == 1 and "camera of panned.mp4 seems to move" in notes[0]
    assert read_model_file(runs / "pan" / "model.pt")["plates"] is None
    # --person-layer forces it, with a warning that the background will smear.
    result = run_cli(["train", str(clips["panned"]), "--name", "pan", "--runs-dir", str(runs), "--preset", "tiny",
                      "--workers", "1", "--steps", "2", "--person-layer", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "--person-layer kept although" in result.output
    assert read_model_file(runs / "pan" / "model.pt")["plates"] is not None


# ------------------------------------------------------------------------------------- transfer

def transfer_args(layer_run: Path, source: Path, out: Path, *extra: str) -> list[str]:
    return ["transfer", str(source), "--model", "pl", "--runs-dir", str(layer_run), "-o", str(out), "--end", "12",
            "--workers", "1", *extra]


def _frames(path: Path) -> np.ndarray:
    return np.stack(list(iter_frames(path)))


@pytest.mark.slow
def test_transfer_over_black_with_the_matte_as_transparent_pngs(layer_run, clips, tmp_path):
    out, mattes = tmp_path / "black.mp4", tmp_path / "matte"
    result = run_cli(transfer_args(layer_run, clips["short"], out, "--background", "none", "--alpha", str(mattes)))
    assert result.exit_code == 0, result.output
    assert "background: black (none)" in result.output and f"wrote {mattes}" in result.output
    import cv2

    pngs = sorted(mattes.glob("*.png"))
    assert len(pngs) == 12
    rgba = cv2.imread(str(pngs[5]), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (114, 64, 4)  # the video part of the 64x128 canvas, with an alpha channel
    alpha = rgba[..., 3].astype(np.float32) / 255
    frame = _frames(out)[5][:114].astype(np.float32)  # the encoder pads the odd width to even
    colour = rgba[..., 2::-1].astype(np.float32)
    # Over black the output is alpha x colour, up to the encoder's loss.
    assert np.abs(frame - alpha[..., None] * colour).mean() < 6


@pytest.mark.slow
def test_transfer_over_an_image_of_another_aspect_and_a_matte_video(layer_run, clips, tmp_path):
    from vid2vid_app.imaging import write_image

    wide = np.zeros((100, 400, 3), np.uint8)
    wide[:, :200] = (20, 200, 20)
    wide[:, 200:] = (200, 20, 200)
    write_image(tmp_path / "wide.png", wide)
    out, matte = tmp_path / "image.mp4", tmp_path / "matte.mp4"
    result = run_cli(transfer_args(layer_run, clips["short"], out, "--background", str(tmp_path / "wide.png"),
                                   "--alpha", str(matte)))
    assert result.exit_code == 0, result.output
    assert "400x100 background scaled to cover the 64x114 output and centre-cropped" in result.output
    frames, mattes = _frames(out), _frames(matte)
    assert len(frames) == len(mattes) == 12
    # Where the matte is empty the background shows: green left of the centre, magenta right.
    empty = mattes[..., 0] < 5
    left, right = empty.copy(), empty.copy()
    left[..., 32:] = False
    right[..., :32] = False
    assert np.median(frames[left][:, 1]) > 150 and np.median(frames[right][:, 0]) > 150


@pytest.mark.slow
def test_transfer_loops_a_shorter_background_video(layer_run, clips, tmp_path, bundled_samples):
    short_bg = make_test_clip(tmp_path / "bg.mp4", list(iter_frames(bundled_samples / "target_cam03.mp4", end=5)), 60)
    out = tmp_path / "video.mp4"
    result = run_cli(transfer_args(layer_run, clips["short"], out, "--background", str(short_bg)))
    assert result.exit_code == 0, result.output
    assert "background video bg.mp4 has 5 frames for the 12 of the output; it is looped" in result.output
    assert len(_frames(out)) == 12


@pytest.mark.slow
@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "notes.txt").write_text("not a picture") and d / "notes.txt", "neither a readable video nor an image"),
    (lambda d: d / "missing.png", "does not exist"),
    (lambda d: d, "is a folder"),
])
def test_bad_background_files_are_refused_before_any_work(layer_run, clips, tmp_path, make, message):
    out = tmp_path / "out.mp4"
    result = run_cli(transfer_args(layer_run, clips["short"], out, "--background", str(make(tmp_path))))
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert "--background" in result.output and not out.exists()


@pytest.mark.slow
def test_an_alpha_output_that_is_neither_video_nor_folder_is_refused(layer_run, clips, tmp_path):
    out = tmp_path / "out.mp4"
    result = run_cli(transfer_args(layer_run, clips["short"], out, "--alpha", str(tmp_path / "matte.png")))
    assert result.exit_code != 0 and "--alpha" in result.output and "folder name without a suffix" in result.output
    assert not out.exists() and "pose:" not in result.output  # refused before the pose pass


def test_full_frame_models_refuse_other_backgrounds_and_mattes(clips, tmp_path):
    old = Path(__file__).parent / "fixtures" / "model_files" / "dance_model_v1.pt"
    for extra in (["--background", "none"], ["--alpha", str(tmp_path / "m.mp4")]):
        result = run_cli(["transfer", str(clips["short"]), "--model", str(old), "-o", str(tmp_path / "o.mp4"),
                          "--end", "4", "--workers", "1", *extra])
        assert result.exit_code != 0 and "needs a person-layer model" in result.output
        assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "m.mp4").exists()


@pytest.mark.slow
def test_transfer_into_the_source_scene(layer_run, clips, tmp_path):
    plate_out, scene_out = tmp_path / "plate.mp4", tmp_path / "scene.mp4"
    assert run_cli(transfer_args(layer_run, clips["landscape"], plate_out)).exit_code == 0
    result = run_cli(transfer_args(layer_run, clips["landscape"], scene_out, "--background", "source"))
    assert result.exit_code == 0, result.output
    assert "background: the scene of landscape.mp4" in result.output
    # The landscape source is the room clip on a black canvas: fitted to cover the portrait output,
    # its scene keeps a thin black strip of that canvas at the left and right edges.
    assert "centre-cropped" in result.output
    assert _frames(scene_out)[:, :, :2].mean() < 15 < _frames(plate_out)[:, :, :2].mean()


# ------------------------------------------------------------------------------------- evaluate

@pytest.mark.slow
def test_evaluate_prints_the_baselines_beside_each_metric(layer_run, tmp_path):
    import json

    out = tmp_path / "eval.json"
    result = run_cli(["evaluate", "--model", "pl", "--runs-dir", str(layer_run), "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "nearest pose" in line)
    assert header.split() == ["model", "mean", "frame", "nearest", "pose"]
    row = next(line for line in result.output.splitlines() if line.strip().startswith("background flicker"))
    assert len(row.split(")")[-1].split()) == 3  # model, mean frame, nearest pose
    metrics = json.loads(out.read_text())
    assert isinstance(metrics["background_flicker"], float)
    mean, nearest = metrics["baselines"]["mean_training_frame"], metrics["baselines"]["nearest_training_pose"]
    # The mean frame is one still image: no flicker at all; it is a blurred room, below the real frames.
    assert mean["flicker"] == 0.0 and mean["background_flicker"] == 0.0
    assert 10 < mean["psnr"] < 40 and 10 < nearest["psnr"] < 40
    # The nearest training pose is a real frame of the same man: the detector finds him on it.
    assert nearest["pose_distance"] is not None and nearest["pose_distance"] < 0.5


@pytest.mark.slow
def test_held_out_frames_read_the_cached_person_masks(layer_run):
    from vid2vid_app.dance.evaluate import held_out_frames

    model = DanceModel.load(layer_run / "pl" / "model.pt")
    frames = held_out_frames(model)
    masks = np.fromfile(layer_run / "pl" / "data" / "masks_64x128.u8", np.uint8).reshape(-1, 128, 64)
    np.testing.assert_array_equal(frames.masks, masks[model.data["val_frames"]])


def test_nearest_pose_index_finds_the_closest_training_pose():
    from vid2vid_app.dance.baselines import TrainingFrames, nearest_pose_index

    base = np.zeros((33, 3), np.float32)
    base[:, 0], base[:, 1], base[:, 2] = np.arange(33) * 3.0, 100.0, 0.9
    keypoints = np.stack([base + np.array([dx, 0, 0], np.float32) for dx in range(20)])  # frame t: moved t px
    keypoints[5, :, 2] = 0.0  # nobody in frame 5
    train = TrainingFrames(frames=np.zeros((20, 2, 2, 3), np.uint8), keypoints=keypoints,
                           index=np.array([0, 3, 5, 8, 12]), masks=None)
    query = np.stack([base + np.array([dx, 0, 0], np.float32) for dx in (7.2, 4.9, 30.0)])
    query[1, :30, 2] = 0.0  # only the last three landmarks are seen: still enough to match
    np.testing.assert_array_equal(nearest_pose_index(train, query), [8, 3, 12])


def test_the_plate_of_the_camera_that_filmed_the_frames_is_chosen():
    from vid2vid_app.dance.backdrop import closest_image

    rng = np.random.default_rng(0)
    plates = rng.integers(0, 255, (3, 40, 30, 3)).astype(np.uint8)
    frames = np.repeat(plates[2:3], 4, axis=0).copy()
    frames[:, 10:25, 10:20] = 255  # a person in front of it
    assert closest_image(plates, frames) == 2
