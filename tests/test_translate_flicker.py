"""--temporal flicker reduction on real footage (a downscaled piece of a real sample clip).

The "generator" here is a stand-in whose flicker is known: the real frame with a random colour gain
and a smooth random offset field per frame, as a frame-wise GAN's outputs jitter. The smoother must
remove most of that flicker, must not smear real motion (a flicker-free output is left almost as it
is), and must not blend across a scene cut.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from translate_utils import DAY, clip_frames, photo

from vid2vid_app.metrics import flicker, temporal_flicker
from vid2vid_app.translate.flicker import FlickerConfig, FlickerSmoother


@pytest.fixture(scope="module")
def frames(shared_samples):
    return clip_frames(shared_samples, count=30, width=96)


def jitter(frames: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        h, w = f.shape[:2]
        gain = 1 + 0.08 * rng.standard_normal(3)
        field = cv2.resize(rng.standard_normal((6, 4, 3)).astype(np.float32), (w, h)) * 8
        out.append(np.clip(f * gain + field, 0, 255).astype(np.uint8))
    return out


def smooth_sequence(inputs: list[np.ndarray], outputs: list[np.ndarray],
                    config: FlickerConfig | None = None) -> list[np.ndarray]:
    """One :class:`FlickerSmoother` over a whole sequence, frame by frame as `translate-video` runs it."""
    smoother = FlickerSmoother(config)
    return [smoother(i, o) for i, o in zip(inputs, outputs, strict=True)]


def mean_abs(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(x.astype(float) - y).mean() for x, y in zip(a, b, strict=True)]))


def test_flicker_is_reduced_on_real_video(frames):
    noisy = jitter(frames)
    smoothed = smooth_sequence(frames, noisy)
    before, after = flicker(noisy, frames), flicker(smoothed, frames)
    print(f"flicker relative to the real clip: frame-wise {before:.2f}, with --temporal {after:.2f}")
    assert after < 0.5 * before
    # And the smoothed frames are closer to the flicker-free truth than the jittered ones.
    assert mean_abs(smoothed, frames) < mean_abs(noisy, frames)


def test_real_motion_is_not_smeared(frames):
    # A perfectly stable "generator" (output = input): blending must leave it nearly unchanged.
    smoothed = smooth_sequence(frames, frames)
    assert mean_abs(smoothed, frames) < 1.5
    assert abs(temporal_flicker(smoothed) - temporal_flicker(frames)) < 0.25 * temporal_flicker(frames)


def test_first_frame_passes_and_scene_cut_is_not_blended(frames, shared_samples):
    smoother = FlickerSmoother(FlickerConfig(strength=0.8))
    first_out = jitter(frames[:1], seed=1)[0]
    assert np.array_equal(smoother(frames[0], first_out), first_out)
    # Cut to a different real scene: the input no longer matches the warped previous input.
    h, w = frames[0].shape[:2]
    other = cv2.resize(photo(shared_samples, DAY[0], width=320), (w, h), interpolation=cv2.INTER_AREA)
    weight, _ = smoother.blend_weight(other)
    assert weight.mean() < 0.1
    out = smoother(other, other)
    assert np.abs(out.astype(int) - other.astype(int)).mean() < 3


def test_strength_zero_is_a_no_op(frames):
    noisy = jitter(frames[:5])
    assert all(np.array_equal(a, b) for a, b in zip(smooth_sequence(frames[:5], noisy, FlickerConfig(strength=0)),
                                                    noisy, strict=True))
