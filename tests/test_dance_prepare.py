"""dance.prepare: target videos -> letterboxed frames, keypoints and body statistics, cached in the
run's data folder; the training/held-out split.

Real parts: MediaPipe on clips cut from the bundled sample (40 frames at half size, see
tests/dance_utils.py).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from dance_utils import make_dance_clips

from vid2vid_app.dance.config import canvas_size, make_config
from vid2vid_app.dance.prepare import prepare_dance_data, split_frames
from vid2vid_app.errors import UserError
from vid2vid_app.imaging import letterbox
from vid2vid_app.video import iter_frames, probe


@pytest.fixture(scope="module")
def clips(bundled_samples, tmp_path_factory):
    return make_dance_clips(bundled_samples, tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def prepared(clips, tmp_path_factory):
    """The short clip prepared once at a 64x128 canvas."""
    return prepare_dance_data([clips["short"]], tmp_path_factory.mktemp("prep") / "data", (64, 128), quiet=True)


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


def test_landscape_video_fills_a_landscape_canvas(clips, tmp_path):
    """The tiny preset's canvas turned to a 640x360 video is 128x64; the frames fill it letterboxed."""
    info = probe(clips["landscape"])
    canvas = canvas_size(make_config("tiny"), (info.width, info.height))
    assert canvas == (128, 64)
    data = prepare_dance_data([clips["landscape"]], tmp_path / "data", canvas, quiet=True, min_frames=4)
    assert data.frames.shape == (20, 64, 128, 3)
    box = data.letterbox
    assert (box.x0, box.y0, box.content_w, box.content_h) == (7, 0, 114, 64)  # 640x360 -> 114x64
    assert data.valid.sum() >= 18


def test_target_videos_of_different_sizes_are_refused(clips, tmp_path):
    message = (f"target videos differ in size: {clips['short']} is 180x320 but {clips['other_size']} is 96x64; "
               "give videos of one size.")
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
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
