"""Metrics against known values: PSNR of a one-gray-level offset, SSIM of constant images and a
direct per-window computation, LPIPS on the real weights against the reference implementation's
value, pose distance on synthetic keypoints, flicker of static and noisy videos."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from vid2vid_app.errors import UserError
from vid2vid_app.metrics import LPIPS, flicker, pose_distance, psnr, ssim, temporal_flicker


def pattern(h: int, w: int, phase: float) -> np.ndarray:
    """A deterministic smooth colour pattern, uint8 (h, w, 3)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [127.5 + 100 * np.sin(x / (4 + c) + phase) * np.cos(y / (6 + 2 * c) - phase) for c in range(3)]
    return np.clip(np.round(np.stack(chans, -1)), 0, 255).astype(np.uint8)


def add_noise(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- PSNR


def test_psnr_known_values():
    a = np.full((8, 8, 3), 100, np.uint8)
    # MSE 1 -> 10 log10(255^2) = 48.1308 dB; MSE 4 -> 6.02 dB less.
    assert psnr(a, a + 1) == pytest.approx(48.1308, abs=1e-4)
    assert psnr(a, a - 2) == pytest.approx(48.1308 - 10 * math.log10(4), abs=1e-4)
    assert psnr(a, a) == math.inf


def test_psnr_of_frame_lists_is_mean_of_frames():
    a = np.full((2, 8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[0] += 1
    b[1] += 2
    expected = (psnr(a[0], b[0]) + psnr(a[1], b[1])) / 2
    assert psnr(a, b) == pytest.approx(expected)
    assert psnr(list(a), list(b)) == pytest.approx(expected)


_A = np.zeros((16, 16, 3), np.uint8)


@pytest.mark.parametrize(("compute", "message"), [
    (lambda: psnr(_A, np.zeros((16, 15, 3), np.uint8)), "frame shapes differ"),
    (lambda: ssim(_A, _A.astype(np.float32)), "uint8"),
    (lambda: psnr([_A, _A], [_A]), "cannot compare 2 frames with 1 frames"),
    (lambda: ssim(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8)), "at least 11x11"),
], ids=["shapes-differ", "not-uint8", "frame-counts-differ", "smaller-than-the-window"])
def test_metric_input_errors(compute, message):
    with pytest.raises(ValueError, match=message):
        compute()


# ----------------------------------------------------------------------------- SSIM

C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def test_ssim_identical_is_one_and_symmetric():
    a = pattern(32, 40, 0.0)
    b = add_noise(a, 20)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) == pytest.approx(ssim(b, a))
    assert -1 <= ssim(a, b) < 1


def test_ssim_constant_images_hand_value():
    # Constant images: zero variance, so SSIM = (2 c1 c2 + C1) / (c1^2 + c2^2 + C1) everywhere.
    c1, c2 = 100.0, 120.0
    a = np.full((20, 20, 3), c1, np.uint8)
    b = np.full((20, 20, 3), c2, np.uint8)
    assert ssim(a, b) == pytest.approx((2 * c1 * c2 + C1) / (c1**2 + c2**2 + C1), rel=1e-9)


def test_ssim_matches_direct_per_window_computation():
    # Straight from the definition: Gaussian weights exp(-d^2 / 2 sigma^2) over each 11x11 window
    # fully inside the image, population statistics, SSIM averaged over windows and channels.
    a = pattern(15, 17, 0.3)
    b = add_noise(a, 25, seed=3)
    d = np.arange(11) - 5
    w = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()
    values = []
    for c in range(3):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        for i in range(15 - 10):
            for j in range(17 - 10):
                px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cxy = (w * (px - mx) * (py - my)).sum()
                values.append((2 * mx * my + C1) * (2 * cxy + C2) / ((mx**2 + my**2 + C1) * (vx + vy + C2)))
    assert ssim(a, b) == pytest.approx(np.mean(values), abs=1e-9)


def test_ssim_decreases_with_noise():
    a = pattern(48, 48, 0.0)
    values = [ssim(a, add_noise(a, s)) for s in (5, 20, 60)]
    assert values[0] > values[1] > values[2]


# ----------------------------------------------------------------------------- LPIPS

# Distances between pattern(64, 64, 0.0) and pattern(64, 64, 0.7) computed with the reference
# implementation (PyPI lpips 0.1.4, its bundled v0.1 heads, backbone weights loaded from
# vgg16/alexnet_features_imagenet.pth); our values match it to ~1e-9 on real photos too.
REFERENCE_LPIPS = {"vgg16": 0.20224924385547638, "alexnet": 0.04425334930419922}


@pytest.fixture(scope="module")
def lpips_alexnet(shared_weights) -> LPIPS:
    return LPIPS("alexnet", weights_dir=shared_weights)


@pytest.fixture(scope="module")
def lpips_vgg16(shared_weights) -> LPIPS:
    return LPIPS("vgg16", weights_dir=shared_weights)


@pytest.fixture(params=["vgg16", "alexnet"])
def lpips_metric(request) -> LPIPS:
    return request.getfixturevalue(f"lpips_{request.param}")


def test_lpips_matches_reference_value(lpips_metric):
    a, b = pattern(64, 64, 0.0), pattern(64, 64, 0.7)
    assert lpips_metric(a, b) == pytest.approx(REFERENCE_LPIPS[lpips_metric.net], abs=1e-5)


def test_lpips_zero_for_identical_and_monotone_in_noise(lpips_metric):
    a = pattern(48, 48, 0.2)
    assert lpips_metric(a, a) == pytest.approx(0.0, abs=1e-7)
    values = [lpips_metric(a, add_noise(a, s)) for s in (5, 25, 70)]
    assert 0 < values[0] < values[1] < values[2]


def test_lpips_of_frame_lists_is_mean_of_frames(lpips_alexnet):
    # Batching logic is shared by both networks; the cheaper one checks it.
    lpips_metric = lpips_alexnet
    a = [pattern(32, 32, 0.0), pattern(32, 32, 1.0), pattern(32, 32, 2.0)]
    b = [add_noise(f, 10 + 20 * i, seed=i) for i, f in enumerate(a)]
    per_frame = [lpips_metric(x, y) for x, y in zip(a, b, strict=True)]
    lpips_metric.batch_size = 2  # frames split over batches give the same mean
    assert lpips_metric(a, b) == pytest.approx(np.mean(per_frame), rel=1e-5)
    assert lpips_metric(np.stack(a), np.stack(b)) == pytest.approx(np.mean(per_frame), rel=1e-5)


@pytest.mark.parametrize(("net", "files", "message"), [
    ("vgg16", None, "does not exist"),  # no weights folder at all
    ("alexnet", {"alexnet_features_imagenet.pth": "alexnet_features_imagenet.pth"},  # backbone, no heads
     "no LPIPS heads for alexnet: looked for .*alexnet_lpips_lin_v0.1.pth"),
    ("alexnet", {"alexnet_features_imagenet.pth": "alexnet_features_imagenet.pth",  # another net's heads
                 "vgg16_lpips_lin_v0.1.pth": "alexnet_lpips_lin_v0.1.pth"},
     "does not hold LPIPS heads for this network"),
], ids=["missing-folder", "heads-absent", "heads-of-another-network"])
def test_lpips_missing_weights_are_clear_errors(tmp_path, shared_weights, net, files, message):
    """``files`` maps a file of ../shared/weights to its name in the weights folder."""
    folder = tmp_path / "weights"
    if files is not None:
        folder.mkdir()
        for src, name in files.items():
            shutil.copy(shared_weights / src, folder / name)
    with pytest.raises(UserError, match=message):
        LPIPS(net, weights_dir=folder)


# ----------------------------------------------------------------------------- pose distance


def standing_pose(t: int = 4, k: int = 33) -> np.ndarray:
    """(t, k, 3) keypoints, all confident: nose at (50, 0), ankles at (40, 100) and (60, 100),
    so the body height is 100; the other landmarks spread between them."""
    kp = np.zeros((t, k, 3))
    kp[:, :, 0] = np.linspace(30, 70, k)
    kp[:, :, 1] = np.linspace(0, 100, k)
    kp[:, 0, :2] = (50, 0)
    kp[:, 27, :2] = (40, 100)
    kp[:, 28, :2] = (60, 100)
    kp[:, :, 2] = 0.9
    return kp


def test_pose_distance_known_value():
    a = standing_pose()
    b = a.copy()
    b[..., :2] += (3.0, 4.0)  # every landmark 5 pixels away
    assert pose_distance(a, b) == pytest.approx(0.05)
    assert pose_distance(a, a) == 0.0


def test_pose_distance_skips_unconfident_landmarks_and_frames():
    a = standing_pose(t=3)
    b = a.copy()
    b[..., :2] += (3.0, 4.0)
    b[:, 5, :2] += 1000.0  # far off, but not confident in b: excluded
    b[:, 5, 2] = 0.1
    a[2, 27, 2] = 0.2  # frame 2 has no confident ankle in a: no height, frame skipped
    b[2, :, :2] += 500.0
    b[1, 7, :2] = np.nan  # undetected landmark
    assert pose_distance(a, b) == pytest.approx(0.05)


def test_pose_distance_nan_without_usable_frames_and_shape_errors():
    a = standing_pose()
    a[:, 0, 2] = 0.0  # nose never confident
    assert math.isnan(pose_distance(a, a))
    with pytest.raises(ValueError, match="keypoint arrays"):
        pose_distance(standing_pose(t=4), standing_pose(t=5))


# ----------------------------------------------------------------------------- flicker


def test_temporal_flicker_known_value():
    frames = [np.full((4, 4, 3), v, np.uint8) for v in (0, 10, 30)]
    assert temporal_flicker(frames) == pytest.approx(15.0)  # (10 + 20) / 2
    assert math.isnan(temporal_flicker(frames[:1]))


def test_flicker_relative_to_real_video():
    rng = np.random.default_rng(0)
    real = np.stack([pattern(24, 24, 0.1 * i) for i in range(6)])
    assert flicker(real, real.copy()) == pytest.approx(1.0)
    noisy = np.stack([add_noise(f, 15, seed=int(rng.integers(1 << 30))) for f in real])
    assert flicker(noisy, real) > 1.0
    static = np.repeat(real[:1], 4, axis=0)
    assert flicker(static, static) == 1.0
    assert flicker(real, static) == math.inf


def test_background_flicker_counts_only_pixels_away_from_the_person():
    from vid2vid_app.metrics import background_flicker

    real = np.zeros((3, 8, 8, 3), np.uint8)
    real[1, :, :4] = 10  # the real background changes by 10 levels on its left half, once
    background = np.ones((3, 8, 8), bool)
    background[:, :, 6:] = False  # the person stands on the right
    assert background_flicker(real, real, background) == pytest.approx(1.0)
    gen = real.copy()
    gen[:, :, 6:] = np.array([0, 200, 0], np.uint8)[None, None, None]  # wild changes on the person only
    gen[1, :, 6:] = 255
    assert background_flicker(gen, real, background) == pytest.approx(1.0)
    still = np.zeros_like(real)
    assert background_flicker(still, real, background) == 0.0
    doubled = real * 2
    assert background_flicker(doubled, real, background) == pytest.approx(2.0)
    assert background_flicker(real, still, background) == math.inf
    assert math.isnan(background_flicker(real[:1], real[:1], background[:1]))
