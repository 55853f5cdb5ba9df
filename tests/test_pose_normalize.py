"""Global pose normalisation against values computed by hand from the formula in DESIGN.md."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vid2vid_app.errors import UserError
from vid2vid_app.pose import BodyStats, PoseSequence, compute_stats, normalize
from vid2vid_app.pose import skeleton as sk


def _person(ankle_y, height, cx=200.0, size=(400, 400), fps=30.0) -> PoseSequence:
    """Frames with a nose ``height`` px above both ankles (at y = ankle_y, x = cx -/+ 10)."""
    ankle_y = np.atleast_1d(np.asarray(ankle_y, dtype=np.float64))
    height = np.broadcast_to(np.asarray(height, dtype=np.float64), ankle_y.shape)
    kp = np.zeros((len(ankle_y), 33, 3), np.float32)
    kp[:, :, :2] = np.nan
    for t, (a, h) in enumerate(zip(ankle_y, height, strict=True)):
        kp[t, sk.L_ANKLE] = (cx - 10, a, 0.9)
        kp[t, sk.R_ANKLE] = (cx + 10, a, 0.9)
        kp[t, sk.NOSE] = (cx, a - h, 0.9)
        kp[t, sk.L_SHOULDER] = (cx - 20, a - 0.8 * h, 0.9)  # an extra point to follow through the mapping
    return PoseSequence(kp, size, fps)


def test_half_size_shifted_source_lands_on_target_scale_and_ground():
    # Target stands still: ankles at y=260, nose 200 px above. Source: half as tall (100 px),
    # standing higher (ankles at y=200) and left of centre (x=50) in an image of the same size.
    target = _person([260.0] * 6, 200.0, cx=100, size=(200, 300))
    source = _person([200.0] * 6, 100.0, cx=50, size=(200, 300))
    out = normalize(source, compute_stats(source), compute_stats(target))
    # By hand: s = 200/100 = 2, dy = 260 - 200 = 60, anchor = (100, 200):
    #   x' = 2 (x - 100) + 100, y' = 2 (y - 200) + 200 + 60.
    kp = out.keypoints[0]
    np.testing.assert_allclose(kp[sk.NOSE, :2], (0.0, 60.0), atol=1e-4)
    np.testing.assert_allclose(kp[sk.L_ANKLE, :2], (-20.0, 260.0), atol=1e-4)
    np.testing.assert_allclose(kp[sk.R_ANKLE, :2], (20.0, 260.0), atol=1e-4)
    # Target's ground line and height reached.
    mid = (kp[sk.L_ANKLE, :2] + kp[sk.R_ANKLE, :2]) / 2
    assert mid[1] == pytest.approx(260.0) and np.linalg.norm(kp[sk.NOSE, :2] - mid) == pytest.approx(200.0)
    assert out.size == (200, 300)
    np.testing.assert_array_equal(out.keypoints[:, :, 2], source.keypoints[:, :, 2])


# Moving in depth. Source: ankle positions below, height = a - 100 (perspective with horizon y=100).
SRC_A = [200, 220, 240, 260, 280, 300, 250, 250, 250]
# Target: ankles 260..360, height = 0.5 (a - 50).
TGT_A = [260, 280, 300, 300, 300, 320, 340, 360]


def test_stats_by_hand():
    src = _person(SRC_A, [a - 100 for a in SRC_A])
    st = compute_stats(src)
    # close = max a = 300; median = 250; d = median - a; candidates 0 < d < 0.5 * (300 - 250) = 25
    # -> d = 10 -> far = 240. Range 60, window 3 px: height at a=300 -> 200, at a=240 -> 140.
    assert (st.close_ankle_y, st.median_ankle_y, st.far_ankle_y) == (300, 250, 240)
    assert (st.height_close, st.height_far) == (200, 140)
    assert st.valid_frames == 9 and (st.width, st.height) == (400, 400)


def test_mapping_in_depth_by_hand():
    src = _person(SRC_A + [270], [a - 100 for a in SRC_A] + [170])
    tgt = _person(TGT_A, [0.5 * (a - 50) for a in TGT_A])
    st_t = compute_stats(tgt)
    # Target: close 360, median 300, far 300 - 20 = 280, heights 155 (a=360) and 115 (a=280).
    assert (st_t.close_ankle_y, st_t.far_ankle_y, st_t.height_close, st_t.height_far) == (360, 280, 155, 115)
    # Source range 60 < target range 80: target close/far narrowed to middle 320 -/+ 30 = 350 / 290,
    # target heights there (linear): 150 and 120. scale_close = 150/200 = 0.75, scale_far = 120/140.
    # Last source frame a = 270: p = (270 - 240)/60 = 0.5, dy = 290 + 0.5 * 60 - 270 = 50,
    # s = 0.5 * (0.75 + 6/7) = 0.8035714.
    out = normalize(src, compute_stats(src), st_t, anchor="ankle")
    s = 0.5 * (0.75 + 120 / 140)
    kp = out.keypoints[-1]
    np.testing.assert_allclose(kp[sk.L_ANKLE, 1], 320.0, atol=1e-3)  # on the mapped ground line
    np.testing.assert_allclose(kp[sk.NOSE, 1], 320.0 - s * 170, atol=1e-3)
    np.testing.assert_allclose(kp[sk.L_SHOULDER, 0], s * (180 - 200) + 200, atol=1e-3)
    # Frame with a = close_S = 300 -> p = 1 -> ground 350, scale 0.75.
    kp = out.keypoints[5]
    np.testing.assert_allclose([kp[sk.R_ANKLE, 1], kp[sk.NOSE, 1]], [350.0, 350.0 - 0.75 * 200], atol=1e-3)
    # Default anchor (first valid ankle y = 200): y' = s (y - 200) + 200 + dy.
    out = normalize(src, compute_stats(src), st_t)
    np.testing.assert_allclose(out.keypoints[-1, sk.L_ANKLE, 1], s * (270 - 200) + 200 + 50, atol=1e-3)
    # Without range matching: p spans the target's full 280..360; a = 300 -> p = 1 -> ground 360.
    out = normalize(src, compute_stats(src), st_t, anchor="ankle", match_range=False)
    np.testing.assert_allclose(out.keypoints[5, sk.L_ANKLE, 1], 360.0, atol=1e-3)


def test_validity_uses_ankles_not_ears_and_max_by_value():
    heights = [95.0, 120.0, 110.0, 100.0, 100.0, 100.0]
    seq = _person([300, 300, 299, 250, 250, 250], heights)
    assert not (seq.keypoints[:, [sk.L_EAR, sk.R_EAR], 2] > 0).any()  # no ears at all: still fine
    # A frame whose ankle is far lower but unsure must not become "close".
    extra = _person([390.0], 80.0)
    extra.keypoints[0, sk.L_ANKLE, 2] = 0.2
    extra.keypoints[0, sk.L_EAR] = (200, 300, 1.0)
    seq = PoseSequence(np.concatenate([seq.keypoints, extra.keypoints]), seq.size, seq.fps)
    st = compute_stats(seq)
    assert st.close_ankle_y == 300 and st.valid_frames == 6
    assert st.height_close == 120.0  # the largest height near close, compared as numbers


@pytest.mark.parametrize(("compute", "message"), [
    # All frames usable but too few: the count is said once ("only 2 of 2 frames" read oddly).
    (lambda: compute_stats(_person([300.0, 310.0], 100.0)), r"the poses have only 2 frames, each showing the nose"),
    (lambda: compute_stats(PoseSequence(np.concatenate([_person([300.0], 100.0).keypoints,
                                                        PoseSequence.empty(2, (400, 400), 30).keypoints]),
                                        (400, 400), 30)), r"only 1 of 3 frames show the nose"),
    (lambda: normalize(PoseSequence.empty(4, (100, 100), 30), compute_stats(_person([300] * 5, 100)),
                       compute_stats(_person([300] * 5, 100))), "both ankles"),
], ids=["stats-of-two-frames", "stats-of-one-in-three", "normalize-without-ankles"])
def test_too_few_valid_frames_is_a_user_error(compute, message):
    with pytest.raises(UserError, match=message):
        compute()


def test_missing_frames_stay_missing_and_target_size_is_used():
    src = _person([200.0] * 6, 100.0, cx=200, size=(400, 400))
    src.keypoints[2, :, :2] = np.nan
    src.keypoints[2, :, 2] = 0
    tgt = _person([300.0] * 5, 150.0, cx=400, size=(800, 400))
    out = normalize(src, compute_stats(src), compute_stats(tgt))
    assert out.size == (800, 400)
    assert np.isnan(out.keypoints[2, :, :2]).all() and not out.valid[2]
    # The source's centred nose maps to the target's centre x; ground and height match the target.
    np.testing.assert_allclose(out.keypoints[0, sk.NOSE, :2], (400.0, 150.0), atol=1e-4)
    np.testing.assert_allclose(out.keypoints[4, sk.L_ANKLE, :2], (400 - 15.0, 300.0), atol=1e-4)


def test_stats_json_round_trip_and_rescale(tmp_path):
    st = compute_stats(_person(SRC_A, [a - 100 for a in SRC_A]))
    assert BodyStats.from_json(st.to_json()) == st
    assert BodyStats.from_json(json.loads(st.to_json())) == st
    st.save(tmp_path / "stats.json")
    assert BodyStats.load(tmp_path / "stats.json") == st
    with pytest.raises(UserError, match="malformed"):
        BodyStats.from_json('{"close_ankle_y": 1}')
    half = st.rescaled((200, 200))
    assert half.close_ankle_y == 150 and half.height_close == 100 and (half.width, half.height) == (200, 200)
