"""Real MediaPipe Pose on the real sample clips (../shared/samples).

To keep the suite fast, clips are decoded at a 640 px long side and every 2nd frame is used
(50 of 100 frames, 30 fps effective); keypoints still come back in original-video pixels.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from pose_utils import mean_acceleration, standing_pose

from vid2vid_app.errors import UserError
from vid2vid_app.pose import PoseDetector, detect_sequence, smooth
from vid2vid_app.pose import skeleton as sk
from vid2vid_app.pose.detector import DetectionStats, _native_stderr_silenced, _Track
from vid2vid_app.video import ThreadedReader, VideoReader, iter_frames

SINGLE = ["pose2sim_singleperson_cam01.mp4", "pose2sim_singleperson_cam02.mp4", "pose2sim_singleperson_cam03.mp4"]
MULTI = "pose2sim_multiperson_cam01.mp4"


@pytest.fixture(scope="module")
def detections(shared_samples):
    """name -> (PoseSequence, DetectionStats), detected once per test module."""
    out = {}
    for name in SINGLE + [MULTI]:
        reader = VideoReader(shared_samples / name, max_side=640, step=2)
        stats = DetectionStats()
        seq = detect_sequence(ThreadedReader(reader), float(reader.info.fps) / 2,
                              (reader.info.width, reader.info.height), stats=stats)
        out[name] = (seq, stats)
    return out


def _centroids_and_heights(seq):
    kp = seq.keypoints
    good = kp[:, :, 2:] >= 0.5
    centroid = np.nanmean(np.where(good, kp[:, :, :2], np.nan), axis=1)
    height = np.nanmax(kp[:, :, 1], axis=1) - np.nanmin(kp[:, :, 1], axis=1)
    return centroid, height


@pytest.mark.slow
@pytest.mark.parametrize("name", SINGLE)
def test_single_person_detected_with_nose_and_ankles(detections, name):
    seq, stats = detections[name]
    assert len(seq) == 50 and stats.frames == 50
    kp = seq.keypoints
    found = (kp[:, sk.NOSE, 2] >= 0.5) & (kp[:, sk.L_ANKLE, 2] >= 0.5) & (kp[:, sk.R_ANKLE, 2] >= 0.5)
    assert found.mean() >= 0.95, f"{name}: nose and both ankles in only {found.mean():.0%} of frames"
    # Coordinates are in the original 1080(8)x1920 pixels, not in the 640 px detection frames:
    # the man spans about 40% of the frame height, i.e. far more than 640 * 0.4 px.
    w, h = seq.size
    assert (w, h) in [(1080, 1920), (1088, 1920)]
    pts = kp[found][:, :, :2]
    assert (pts[..., 0] > -0.1 * w).all() and (pts[..., 0] < 1.1 * w).all()
    nose_to_ankle = kp[found, sk.L_ANKLE, 1] - kp[found, sk.NOSE, 1]
    assert np.median(nose_to_ankle) > 400


@pytest.mark.slow
def test_multiperson_clip_follows_one_person(detections):
    seq, stats = detections[MULTI]
    assert seq.valid.mean() >= 0.95
    centroid, height = _centroids_and_heights(seq)
    jumps = np.linalg.norm(np.diff(centroid, axis=0), axis=1) / height[1:]
    # At 30 fps a person moves a few % of their height per frame; a switch to the other person
    # (about a body height away) would show as a jump far above 15%.
    assert np.nanmax(jumps) < 0.15, f"centroid jumped by {np.nanmax(jumps):.0%} of the body height"
    assert stats.switches_rejected == 0


def test_switch_to_another_person_is_rejected(shared_samples):
    # Two people side by side (two clips). The followed one vanishes for two frames: MediaPipe's
    # tracker then picks up the other person, which must be refused (a miss) and, once the first
    # person is back, found again by re-detecting around the tracked box.
    a = list(iter_frames(shared_samples / SINGLE[0], size=(216, 384), end=24, step=2))
    b = list(iter_frames(shared_samples / SINGLE[2], size=(216, 384), end=24, step=2))
    frames = [np.concatenate([x, y], axis=1) for x, y in zip(a, b, strict=True)]
    xs = []
    with PoseDetector() as det:
        first = det.detect(frames[0])
        side = int(np.nanmean(first[first[:, 2] >= 0.5, 0]) >= 216)  # which half the tracked person is in
        for i, frame in enumerate(frames[1:], start=1):
            if i in (5, 6):
                frame = frame.copy()
                frame[:, side * 216:(side + 1) * 216] = 128  # the followed person disappears
            kp = det.detect(frame)
            xs.append(np.nanmean(kp[kp[:, 2] >= 0.5, 0]) if kp[:, 2].max() > 0 else None)
        redetections = det.redetections
    seen = [x for x in xs if x is not None]
    assert len(seen) >= len(xs) - 2, "the person must be found again after the gap"
    assert all((x >= 216) == bool(side) for x in seen), "a frame followed the other person"
    assert xs[4] is None and xs[5] is None  # frames 5 and 6: missed, not the other person
    assert redetections >= 1


def test_max_side_detection_returns_original_pixels(shared_samples):
    frame = next(iter_frames(shared_samples / SINGLE[0], start=10, end=11))
    small = next(iter_frames(shared_samples / SINGLE[0], start=10, end=11, max_side=640))
    h, w = frame.shape[:2]
    with PoseDetector(static_image_mode=True) as det:
        full = det.detect(frame)
        scaled = det.detect(small, size=(w, h))
    ok = (full[:, 2] >= 0.5) & (scaled[:, 2] >= 0.5)
    assert ok.sum() >= 20
    err = np.linalg.norm(full[ok, :2] - scaled[ok, :2], axis=1)
    assert np.median(err) < 0.02 * h, f"median difference {np.median(err):.1f} px"


def test_no_person_gives_missing_row_and_bad_frames_are_refused():
    with PoseDetector(static_image_mode=True) as det:
        kp = det.detect(np.zeros((120, 90, 3), np.uint8))
        assert kp.shape == (33, 3) and np.isnan(kp[:, :2]).all() and (kp[:, 2] == 0).all()
        with pytest.raises(ValueError, match="uint8"):
            det.detect(np.zeros((120, 90), np.float32))
    with pytest.raises(UserError, match="no frames"):
        detect_sequence([], 25.0, (90, 120))


@pytest.mark.slow
def test_smoothing_reduces_jitter_of_real_keypoints(detections):
    seq, _ = detections[SINGLE[0]]
    before = mean_acceleration(seq)
    after = mean_acceleration(smooth(seq))
    assert after < 0.7 * before, (before, after)


def test_track_rules_on_synthetic_poses():
    track = _Track(max_jump=0.5, lost_after=3)
    pose = standing_pose(200, 300)  # about 240 px tall
    assert track.matches(pose)  # nobody tracked yet: anyone is accepted
    track.accept(pose)
    near = pose.copy()
    near[:, 0] += 30
    far = pose.copy()
    far[:, 0] += 400
    assert track.matches(near) and not track.matches(far)
    track.miss()  # one missed frame doubles the allowed distance ...
    far_ok = pose.copy()
    far_ok[:, 0] += 200
    assert track.matches(far_ok) and not track.matches(far)
    for _ in range(3):  # ... and after lost_after misses the track is dropped
        track.miss()
    assert track.box is None and track.matches(far)


def test_native_start_up_chatter_is_dropped_but_errors_surface(capfd):
    """MediaPipe's native INFO/WARNING start-up lines written to fd 2 while a graph starts are
    dropped; anything else (a native error, Python text) still reaches stderr, in order."""
    with _native_stderr_silenced():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"W0000 00:00:1795988516.045101   24147 inference_feedback_manager.cc:114] Feedback manager "
                    b"requires a model with a single signature inference.\n")
        os.write(2, b"I0000 00:00:1795988516.045101   24147 gl_context.cc:369] GL version: 3.2\n")
        os.write(2, b"E0000 00:00:1795988516.1   24147 calculator_graph.cc:887] a real error\n")
        os.write(2, b"F0000 a fatal one\n")
    err = capfd.readouterr().err
    assert err == ("E0000 00:00:1795988516.1   24147 calculator_graph.cc:887] a real error\n"
                   "F0000 a fatal one\n")
