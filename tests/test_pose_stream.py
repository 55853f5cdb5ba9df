"""Streaming clean-up of keypoints (PoseCleaner) and streaming normalisation (StreamNormalizer)
against the whole-sequence functions they stand in for, on real detected motion: the body
keypoints of the bundled source clip (bench/data, as `dance pose` wrote them), with a face and
hands that follow the head and wrists, and gaps knocked into every part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dance_transfer_utils import TARGET_STATS

from vid2vid_app.dance.transfer import hold_missing
from vid2vid_app.errors import UserError
from vid2vid_app.pose import compute_stats, fill_gaps, normalize, parts, smooth
from vid2vid_app.pose import skeleton as sk
from vid2vid_app.pose.keypoints import PoseSequence
from vid2vid_app.pose.normalize import StreamNormalizer
from vid2vid_app.pose.stream import PoseCleaner, clean_stream

KEYPOINTS = Path(__file__).resolve().parents[1] / "bench" / "data" / "source_pose" / "keypoints.npz"
BODY_GAPS = ((0, 3), (20, 22), (40, 60), (70, 71), (90, 92))  # leading, short, long, single, short
HAND_GAPS = ((10, 12), (30, 33), (50, 51), (75, 95))


def knock_out(points: np.ndarray, runs, rows: slice) -> None:
    """Mark ``rows`` of the frames in ``runs`` (start, end) as not found (NaN, confidence 0)."""
    for a, b in runs:
        points[a:b, rows, :2] = np.nan
        points[a:b, rows, 2] = 0.0


def holistic_source() -> PoseSequence:
    """The bundled source's 100 detected body poses (362x640, 60 fps) with a face around the nose
    and hands around the wrists (each with its own jitter), and gaps in the body and a hand."""
    body = PoseSequence.load(KEYPOINTS).keypoints
    rng = np.random.default_rng(0)
    t = len(body)
    face = np.zeros((t, parts.NUM_FACE, 3), np.float32)
    face[..., :2] = body[:, sk.NOSE, None, :2] + rng.normal(0, 6, (t, parts.NUM_FACE, 2))
    face[..., 2] = 0.9
    hands = np.zeros((t, 2, parts.NUM_HAND, 3), np.float32)
    for side, wrist in ((parts.LEFT_HAND, sk.L_WRIST), (parts.RIGHT_HAND, sk.R_WRIST)):
        hands[:, side, :, :2] = body[:, wrist, None, :2] + rng.normal(0, 4, (t, parts.NUM_HAND, 2))
    hands[..., 2] = 0.8
    packed = parts.pack(body, face, hands)
    knock_out(packed, BODY_GAPS, slice(0, parts.NUM_PACKED))
    knock_out(packed, HAND_GAPS, slice(parts.HANDS_START, parts.HANDS_START + parts.NUM_HAND))
    return PoseSequence.from_packed(packed, (362, 640), 60.0)


def offline(seq: PoseSequence, method: str | None):
    """What `dance transfer --whole-clip` does: fill gaps, smooth, hold; and the gap report."""
    filled, report = fill_gaps(seq)
    smoothed = smooth(filled, method=method) if method else filled
    return smoothed.packed(), hold_missing(smoothed.packed(), smoothed.valid), report


def streamed(seq: PoseSequence, method: str | None, lookahead: int | None):
    cleaner = PoseCleaner(seq.landmarks, seq.fps, seq.height, smooth_method=method, lookahead=lookahead)
    out = list(clean_stream(seq.packed(), cleaner))
    return np.stack([c for c, _ in out]), np.stack([h for _, h in out]), cleaner


@pytest.mark.parametrize("method", ["one_euro", "median", None])
@pytest.mark.parametrize("landmarks", ["body", "holistic"])
def test_a_lookahead_over_the_whole_clip_gives_the_offline_result_bit_for_bit(method, landmarks):
    seq = holistic_source()
    if landmarks == "body":
        seq = PoseSequence(seq.keypoints, seq.size, seq.fps)
    cleaned, held, report = offline(seq, method)
    for lookahead in (None, len(seq)):
        got_cleaned, got_held, cleaner = streamed(seq, method, lookahead)
        np.testing.assert_array_equal(got_cleaned, cleaned)
        np.testing.assert_array_equal(got_held, held)
        assert (cleaner.detected, cleaner.interpolated, cleaner.held) == (
            report.detected_frames, report.filled_frames, report.missing_frames) == (72, 5, 23)


@pytest.mark.parametrize("method", ["median", None])
def test_gap_filling_holding_and_median_smoothing_are_exact_with_a_short_lookahead(method):
    seq = holistic_source()
    cleaned, held, _ = offline(seq, method)
    got_cleaned, got_held, _ = streamed(seq, method, lookahead=3)
    np.testing.assert_array_equal(got_cleaned, cleaned)
    np.testing.assert_array_equal(got_held, held)


def test_one_euro_with_half_a_second_of_lookahead_stays_within_a_pixel():
    """The backward pass starts 30 frames ahead instead of at the end of the run: frames whose run
    ends within those 30 frames are exact, the others within a pixel of the 362x640 source (the
    measured worst case on this clip is 0.3 px)."""
    seq = holistic_source()
    cleaned, held, _ = offline(seq, "one_euro")
    got_cleaned, got_held, _ = streamed(seq, "one_euro", lookahead=30)
    diff = np.abs(np.nan_to_num(got_held[..., :2]) - np.nan_to_num(held[..., :2]))
    assert diff.max() < 1.0
    body_valid = ~np.isnan(cleaned[:, 0, 0])
    run_ends = [t + 1 for t in range(len(seq)) if body_valid[t] and (t + 1 == len(seq) or not body_valid[t + 1])]
    near_end = np.zeros(len(seq), bool)
    for end in run_ends:
        near_end[end - 30 : end] = True
    near_end &= body_valid
    # The body of frames within 30 frames of the end of their run: bit for bit.
    np.testing.assert_array_equal(got_cleaned[near_end, : sk.NUM_LANDMARKS], cleaned[near_end, : sk.NUM_LANDMARKS])
    assert not np.array_equal(got_cleaned, cleaned)  # elsewhere the window does change something


def test_each_frame_leaves_once_the_lookahead_has_arrived():
    """Latency is bounded: with no gap pending a frame is handed on as soon as the frame
    `lookahead` later arrives; a gap that may still be bridged holds frames back at most
    max_gap + 1 frames more; frames before the first person wait for it."""
    seq = holistic_source()
    cleaner = PoseCleaner("holistic", seq.fps, seq.height, lookahead=10)
    lags = {}
    for t, row in enumerate(seq.packed()):
        for _ in cleaner.push(row):
            lags[len(lags)] = t - len(lags)
    tail = len(cleaner.finish())
    assert len(lags) + tail == len(seq)
    assert min(lags.values()) == 10
    assert max(lags[f] for f in range(3, len(lags))) <= 10 + cleaner.max_gap + 1
    assert lags[0] == 10 + 3  # frames 0-2 (nobody) waited for frame 3, the first with a person


def test_frames_without_a_person_hold_the_previous_one_and_a_source_without_anyone_hands_on_nothing():
    seq = holistic_source()
    _, got_held, _ = streamed(seq, None, lookahead=5)
    np.testing.assert_array_equal(got_held[:3], np.repeat(got_held[3:4], 3, axis=0))  # before the first person
    np.testing.assert_array_equal(got_held[40:60], np.repeat(got_held[39:40], 20, axis=0))  # a long gap
    empty = PoseSequence.empty(20, (362, 640), 60.0, "holistic")
    cleaner = PoseCleaner("holistic", 60.0, 640, lookahead=5)
    assert list(clean_stream(empty.packed(), cleaner)) == [] and cleaner.detected == 0 and cleaner.waiting == 20


def test_streamed_normalisation_equals_normalize_with_the_same_statistics():
    seq = holistic_source()
    filled, _ = fill_gaps(seq)
    smoothed = smooth(filled)
    held = smoothed.with_points(hold_missing(smoothed.packed(), smoothed.valid))
    packed = held.packed()
    packed[:5, sk.L_ANKLE, 2] = 0.1  # the first frames show no clear ankles: they wait for the anchor
    held = held.with_points(packed)
    stats = compute_stats(smoothed)
    expected = normalize(held, stats, TARGET_STATS).packed()
    normalizer = StreamNormalizer(stats, TARGET_STATS, held.size)
    got = [row for frame in packed for row in normalizer.push(frame)] + normalizer.finish()
    np.testing.assert_array_equal(np.stack(got), expected)


def test_streamed_normalisation_without_any_clear_ankles_is_refused():
    seq = holistic_source()
    normalizer = StreamNormalizer(compute_stats(seq), TARGET_STATS, seq.size)
    packed = seq.packed()
    packed[:, sk.R_ANKLE, 2] = 0.0
    assert [row for frame in packed for row in normalizer.push(frame)] == []
    with pytest.raises(UserError, match="no frame of the source shows both ankles clearly"):
        normalizer.finish()
