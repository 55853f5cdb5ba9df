"""PoseSequence: save/load, OpenPose BODY_25 export, coordinate mapping helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pose_utils import standing_pose

from vid2vid_app.errors import UserError
from vid2vid_app.pose import PoseSequence
from vid2vid_app.pose import skeleton as sk


def _sequence(frames: int = 4, missing: tuple[int, ...] = (2,)) -> PoseSequence:
    kp = np.stack([standing_pose(200, 300) + np.float32([t, 0, 0]) for t in range(frames)])
    seq = PoseSequence(kp, (200, 300), 25.0)
    for t in missing:
        seq.keypoints[t, :, :2] = np.nan
        seq.keypoints[t, :, 2] = 0
    return seq


def test_valid_mask_marks_missing_frames():
    seq = _sequence(5, missing=(1, 3))
    assert seq.valid.tolist() == [True, False, True, False, True]
    empty = PoseSequence.empty(3, (10, 20), 30)
    assert not empty.valid.any() and np.isnan(empty.keypoints[:, :, :2]).all()


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(T, 33, 3\)"):
        PoseSequence(np.zeros((4, 25, 3)), (10, 10), 25)


def test_save_load_round_trip_keeps_nan_size_and_fps(tmp_path):
    seq = _sequence()
    path = tmp_path / "kp.npz"
    seq.save(path)
    assert path.exists() and not list(tmp_path.glob(".*")), "no temp file may remain"
    with np.load(path) as data:  # the documented array names
        assert set(data.files) == {"keypoints", "fps", "size"}
        assert data["keypoints"].shape == (4, 33, 3) and data["size"].tolist() == [200, 300]
    back = PoseSequence.load(path)
    assert back.size == (200, 300) and back.fps == 25.0
    np.testing.assert_array_equal(back.keypoints, seq.keypoints)  # NaNs in the same places


@pytest.mark.parametrize(("write", "message"), [
    (None, "does not exist"),
    (lambda p: p.write_text("not numpy"), "not a keypoints file"),
    (lambda p: np.savez(p, something=np.zeros(3)), "not a keypoints file"),
], ids=["missing", "text-file", "other-arrays"])
def test_load_errors_are_user_errors(tmp_path, write, message):
    path = tmp_path / "poses.npz"
    if write is not None:
        write(path)
    with pytest.raises(UserError, match=message):
        PoseSequence.load(path)


def test_body25_order_and_derived_points():
    seq = _sequence(2, missing=(1,))
    body = seq.to_body25()
    kp = seq.keypoints[0]
    assert body.shape == (2, 25, 3)
    assert sk.BODY25_NAMES[1] == "Neck" and sk.BODY25_NAMES[8] == "MidHip"
    np.testing.assert_allclose(body[0, 1, :2], (kp[sk.L_SHOULDER, :2] + kp[sk.R_SHOULDER, :2]) / 2)
    np.testing.assert_allclose(body[0, 8, :2], (kp[sk.L_HIP, :2] + kp[sk.R_HIP, :2]) / 2)
    np.testing.assert_allclose(body[0, 2], kp[sk.R_SHOULDER])  # RShoulder
    np.testing.assert_allclose(body[0, 14], kp[sk.L_ANKLE])    # LAnkle
    np.testing.assert_allclose(body[0, 24], kp[sk.R_HEEL])     # RHeel
    assert body[0, 20].tolist() == [0, 0, 0]  # LSmallToe: MediaPipe has none
    assert not body[1].any(), "a missing frame exports as zeros, OpenPose's convention"


def test_openpose_json_files(tmp_path):
    seq = _sequence(3, missing=(1,))
    out = tmp_path / "openpose"
    paths = seq.to_openpose_json(out, stem="clip")
    assert [p.name for p in paths] == [f"clip_{t:012d}_keypoints.json" for t in range(3)]
    first = json.loads(paths[0].read_text())
    people = first["people"]
    assert len(people) == 1
    flat = people[0]["pose_keypoints_2d"]
    assert len(flat) == 25 * 3
    neck = np.array(flat[3:5])
    kp = seq.keypoints[0]
    np.testing.assert_allclose(neck, (kp[sk.L_SHOULDER, :2] + kp[sk.R_SHOULDER, :2]) / 2, atol=1e-3)
    assert json.loads(paths[1].read_text())["people"] == []
    # Existing folder refused unless overwrite; with names, one file per image name.
    with pytest.raises(UserError, match="already exists"):
        seq.to_openpose_json(out)
    paths = seq.to_openpose_json(out, overwrite=True, names=["a", "b", "c"])
    assert sorted(p.name for p in out.iterdir()) == ["a_keypoints.json", "b_keypoints.json", "c_keypoints.json"]


def test_scaled_and_resized_to():
    seq = _sequence(1, missing=())
    half = seq.scaled(0.5)
    assert half.size == (100, 150)
    np.testing.assert_allclose(half.keypoints[0, :, :2], seq.keypoints[0, :, :2] * 0.5)
    np.testing.assert_array_equal(half.keypoints[0, :, 2], seq.keypoints[0, :, 2])
    wide = seq.resized_to((400, 300))
    np.testing.assert_allclose(wide.keypoints[0, :, 0], seq.keypoints[0, :, 0] * 2)
    np.testing.assert_allclose(wide.keypoints[0, :, 1], seq.keypoints[0, :, 1])

