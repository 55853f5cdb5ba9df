"""Background plates and the camera check on real footage (the bundled tripod clip and MediaPipe's
real person segmentation), holes where a person never moves, and fitting other backgrounds."""

from __future__ import annotations

import numpy as np
import pytest

from vid2vid_app.dance.plate import compute_plate, fit_cover, person_region

CANVAS = (64, 128)  # the tiny preset's portrait canvas


@pytest.fixture(scope="module")
def clip(bundled_samples):
    """40 real frames of samples/target_cam01.mp4 (a tripod recording) with their person masks from
    MediaPipe's segmentation, both at full size."""
    from vid2vid_app.pose.detector import segment_frames
    from vid2vid_app.video import iter_frames

    frames = list(iter_frames(bundled_samples / "target_cam01.mp4", end=80, step=2))
    masks = list(segment_frames(iter(frames)))
    return frames, masks


def _canvas(frames, masks, shift=None):
    """Frames and masks letterboxed into the tiny canvas; ``shift(i)`` -> (dx, dy) crops a 300x600
    window at that offset first (a camera that moves)."""
    from vid2vid_app.dance.layer import canvas_mask
    from vid2vid_app.imaging import letterbox

    out_f, out_m = [], []
    for i, (f, m) in enumerate(zip(frames, masks, strict=True)):
        if shift is not None:
            dx, dy = shift(i)
            f, m = np.ascontiguousarray(f[dy : dy + 600, dx : dx + 300]), m[dy : dy + 600, dx : dx + 300]
        canvas, box = letterbox(f, *CANVAS)
        out_f.append(canvas)
        out_m.append(canvas_mask(m, box, CANVAS))
    return out_f, out_m


def test_segmentation_covers_the_person_and_nothing_on_an_empty_frame(clip):
    from vid2vid_app.pose import detect_sequence
    from vid2vid_app.pose.detector import PersonSegmenter

    frames, masks = clip
    h, w = frames[0].shape[:2]
    assert masks[0].shape == (h, w) and masks[0].dtype == np.float32
    kp = detect_sequence(frames[:1], 30.0, (w, h)).keypoints[0]
    hips = kp[[23, 24], :2].mean(axis=0).round().astype(int)
    assert masks[0][hips[1], hips[0]] > 0.5  # the person's hips are person
    assert masks[0][:20, :20].max() < 0.1  # the ceiling corner is not
    assert 0.02 < float((masks[0] > 0.5).mean()) < 0.2  # one man in a room
    with PersonSegmenter(static_image_mode=True) as seg:
        assert not seg.segment(np.full((64, 64, 3), 90, np.uint8)).any()


def test_plate_of_a_tripod_clip_is_the_room_without_the_person(clip):
    frames, masks = _canvas(*clip)
    plate = compute_plate(frames, masks)
    assert plate.image.shape == (CANVAS[1], CANVAS[0], 3) and plate.image.dtype == np.uint8
    assert plate.motion("cam01") is None
    # Away from the person every frame shows the plate (up to video noise) ...
    away = ~person_region(masks[10], 6)
    diff = np.abs(frames[10].astype(int) - plate.image.astype(int)).max(axis=-1)
    assert np.median(diff[away]) <= 3
    # ... while where the person stands the plate differs from the frame (he is not in it).
    on = masks[10] > 200
    assert np.median(diff[on]) > 20


def test_a_moving_camera_is_named_with_its_reason(clip):
    panned = _canvas(*clip, shift=lambda i: (int(1.5 * i), 0))  # 60 px of 360 over the clip
    plate = compute_plate(*panned)
    reason = plate.motion("panned.mp4")
    assert reason is not None and "camera of panned.mp4 seems to move" in reason
    assert "does not explain" in reason


def test_holes_where_the_person_never_leaves_are_inpainted():
    """A synthetic clip: a textured background whose centre a 'person' (a grey block with its
    mask) covers in every frame; the hole is inpainted from the surroundings and reported."""
    rng = np.random.default_rng(0)
    background = np.zeros((64, 48, 3), np.uint8)
    background[:, :24] = (200, 40, 40)
    background[:, 24:] = (40, 40, 200)
    frames, masks = [], []
    for i in range(20):
        f = background.copy()
        x0 = 16 + (i % 3)
        f[20:44, x0 : x0 + 14] = 128
        f = np.clip(f.astype(int) + rng.integers(-2, 3, f.shape), 0, 255).astype(np.uint8)
        m = np.zeros((64, 48), np.uint8)
        m[20:44, x0 : x0 + 14] = 255
        frames.append(f)
        masks.append(m)
    plate = compute_plate(frames, masks, margin=0.0)
    assert plate.holes[30, 24] and not plate.holes[5, 5]
    assert 0.05 < plate.hole_fraction < 0.15
    # Inpainted from both sides: reddish on the left of the hole, bluish on its right.
    assert plate.image[32, 19, 0] > plate.image[32, 19, 2] and plate.image[32, 28, 2] > plate.image[32, 28, 0]
    note = plate.hole_note("still.mp4")
    assert note is not None and "never left" in note and "inpainted" in note
    assert plate.motion() is None


def test_fit_cover_fills_the_canvas_and_says_what_it_cut():
    wide = np.zeros((100, 400, 3), np.uint8)
    wide[:, 150:250] = 255  # a white band in the middle
    fitted, note = fit_cover(wide, 64, 128)
    assert fitted.shape == (128, 64, 3)
    assert fitted[:, 32].min() == 255  # the centre is kept
    assert note is not None and "centre-cropped" in note and "width cut" in note and "400x100" in note
    same, none = fit_cover(np.zeros((256, 128, 3), np.uint8), 64, 128)
    assert same.shape == (128, 64, 3) and none is None
    tall, note = fit_cover(np.zeros((300, 50, 3), np.uint8), 64, 128)
    assert tall.shape == (128, 64, 3) and "height cut" in note


def test_compute_plate_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="as many masks as frames"):
        compute_plate([np.zeros((8, 8, 3), np.uint8)], [])
