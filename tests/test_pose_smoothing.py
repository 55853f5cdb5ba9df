"""Gap filling and temporal smoothing on synthetic trajectories, and the tests' jitter metric.

(Smoothing of real detected keypoints is checked in test_pose_detector.py, beside the detections.)
"""

from __future__ import annotations

import numpy as np
import pytest
from pose_utils import mean_acceleration

from vid2vid_app.pose import PoseSequence, fill_gaps, smooth
from vid2vid_app.pose.smoothing import default_max_gap

W, H = 1280, 720


def _moving(frames: int = 150, fps: float = 30.0, noise: float = 2.0, seed: int = 0):
    """A clean trajectory (every landmark on its own slow ellipse, 0.2-0.8 Hz, 30-150 px) and a
    copy with Gaussian pixel noise, as (clean, noisy) sequences."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    clean = np.zeros((frames, 33, 3), np.float32)
    for k in range(33):
        f, a = rng.uniform(0.2, 0.8), rng.uniform(30, 150)
        clean[:, k, 0] = 640 + a * np.sin(2 * np.pi * f * t + k)
        clean[:, k, 1] = 360 + 0.7 * a * np.cos(2 * np.pi * 0.8 * f * t + k)
    clean[:, :, 2] = 1.0
    noisy = clean.copy()
    noisy[:, :, :2] += rng.normal(0, noise, (frames, 33, 2)).astype(np.float32)
    return PoseSequence(clean, (W, H), fps), PoseSequence(noisy, (W, H), fps)


def _error(seq: PoseSequence, ref: PoseSequence) -> float:
    return float(np.linalg.norm(seq.keypoints[:, :, :2] - ref.keypoints[:, :, :2], axis=2).mean())


def _with_missing(seq: PoseSequence, frames) -> PoseSequence:
    out = seq.copy()
    out.keypoints[list(frames), :, :2] = np.nan
    out.keypoints[list(frames), :, 2] = 0
    return out


# --- fill_gaps -----------------------------------------------------------------------------------

def test_fill_gaps_interpolates_short_runs_linearly():
    clean, _ = _moving(20)
    seq = clean.copy()
    seq.keypoints[4, :, 2] = 0.8  # confidence of the frame before the gap
    seq = _with_missing(seq, [5, 6, 7])
    filled, report = fill_gaps(seq, max_gap=3)
    before, after = seq.keypoints[4], seq.keypoints[8]
    for i, t in enumerate([5, 6, 7], start=1):
        w = i / 4
        np.testing.assert_allclose(filled.keypoints[t, :, :2], (1 - w) * before[:, :2] + w * after[:, :2], rtol=1e-6)
        np.testing.assert_allclose(filled.keypoints[t, :, 2], 0.8)  # lower of the two neighbours
    assert report.filled_frames == 3 and report.filled_runs == [(5, 8)]
    assert report.missing_frames == 0 and report.detected_frames == 17 and report.total_frames == 20
    assert np.isnan(seq.keypoints[5, 0, 0]), "the input must not be modified"


def test_fill_gaps_leaves_long_and_edge_runs_missing():
    clean, _ = _moving(30)
    seq = _with_missing(clean, [0, 1, 10, 20, 21, 22, 23, 24, 29])
    filled, report = fill_gaps(seq, max_gap=3)
    assert report.filled_runs == [(10, 11)]
    assert report.missing_runs == [(0, 2), (20, 25), (29, 30)]
    assert report.missing_frames == 8 and report.filled_frames == 1
    assert filled.valid.tolist() == [t not in (0, 1, 20, 21, 22, 23, 24, 29) for t in range(30)]
    assert np.isnan(filled.keypoints[22, :, :2]).all() and (filled.keypoints[22, :, 2] == 0).all()
    assert "left missing" in report.summary()
    _, none = fill_gaps(seq, max_gap=0)
    assert none.filled_frames == 0 and none.missing_frames == 9


def test_default_max_gap_is_a_quarter_second():
    assert default_max_gap(60) == 15 and default_max_gap(24) == 6 and default_max_gap(1) == 1


# --- smoothing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("noise", [2.0, 4.0])
def test_one_euro_reduces_jitter_and_error(noise):
    clean, noisy = _moving(noise=noise)
    out = smooth(noisy, "one_euro")
    acc_before, acc_after = mean_acceleration(noisy), mean_acceleration(out)
    assert acc_after < 0.4 * acc_before, (acc_before, acc_after)
    assert _error(out, clean) < 0.8 * _error(noisy, clean)


def test_median_reduces_jitter_and_error():
    clean, noisy = _moving(noise=3.0)
    out = smooth(noisy, "median", window=5)
    assert mean_acceleration(out) < 0.8 * mean_acceleration(noisy)
    assert _error(out, clean) < _error(noisy, clean)


def test_one_euro_does_not_lag():
    # Constant velocity: a causal low-pass would trail behind by several pixels.
    frames, fps = 90, 30.0
    kp = np.zeros((frames, 33, 3), np.float32)
    kp[:, :, 0] = 100 + 8.0 * np.arange(frames)[:, None]  # 240 px/s to the right
    kp[:, :, 1] = 300
    kp[:, :, 2] = 1
    ramp = PoseSequence(kp, (W, H), fps)
    out = smooth(ramp, "one_euro")
    interior = slice(10, -10)
    assert np.abs(out.keypoints[interior, :, 0] - kp[interior, :, 0]).max() < 0.5
    # On oscillating motion the best alignment with the clean curve is at zero shift.
    clean, noisy = _moving(noise=2.0)
    sm = smooth(noisy, "one_euro")
    errors = {s: np.abs(sm.keypoints[10 + s:-10 + s, :, 0] - clean.keypoints[10:-10, :, 0]).mean()
              for s in range(-3, 4)}
    assert min(errors, key=errors.get) == 0, errors


def test_smoothing_keeps_gaps_and_confidences():
    _, noisy = _moving(40)
    noisy.keypoints[:, 3, 2] = 0.42
    seq = _with_missing(noisy, [15, 16])
    for method in ("one_euro", "median"):
        out = smooth(seq, method)
        assert np.isnan(out.keypoints[15:17, :, :2]).all()
        assert np.isfinite(out.keypoints[:15, :, :2]).all() and np.isfinite(out.keypoints[17:, :, :2]).all()
        np.testing.assert_array_equal(out.keypoints[:, :, 2], seq.keypoints[:, :, 2])


@pytest.mark.parametrize(("method", "params", "message"), [
    ("kalman", {}, "unknown smoothing method"),
    ("median", {"window": 4}, "odd"),
    ("one_euro", {"window": 3}, "unknown parameters"),
], ids=["unknown-method", "even-window", "parameter-of-another-method"])
def test_smoothing_rejects_bad_arguments(method, params, message):
    _, noisy = _moving(10)
    with pytest.raises(ValueError, match=message):
        smooth(noisy, method, **params)


# --- jitter metric -------------------------------------------------------------------------------

def test_mean_acceleration_known_value():
    t = np.arange(10, dtype=np.float32)
    kp = np.zeros((10, 33, 3), np.float32)
    kp[:, :, 0] = 0.5 * 3.0 * t[:, None] ** 2  # x'' = 3 px / frame^2 everywhere
    kp[:, :, 1] = 7.0
    kp[:, :, 2] = 1.0
    seq = PoseSequence(kp, (W, H), 30)
    assert mean_acceleration(seq) == pytest.approx(3.0)
    seq.keypoints[:, 5:, 2] = 0.1  # low-confidence landmarks are ignored
    seq.keypoints[:, :5, 0] = 0
    assert mean_acceleration(seq) == pytest.approx(0.0)
    seq.keypoints[:, :, 2] = 0.1
    assert np.isnan(mean_acceleration(seq))
