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
from click.testing import CliRunner
from dance_utils import make_dance_clips
from video_utils import make_test_clip

from vid2vid_app.cli.dance import dance
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
    """A person-layer run (the tiny preset's default) on the short real clip: RUNS folder."""
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli(["train", str(clips["short"]), "--name", "pl", "--runs-dir", str(runs), *TINY, "--steps", "3"])
    assert result.exit_code == 0, result.output
    return runs


def run_cli(args: list[str]):
    result = CliRunner().invoke(dance, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# ------------------------------------------------------------------------------------- training

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
