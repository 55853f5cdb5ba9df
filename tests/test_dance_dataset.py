"""dance.dataset: temporal pairs (frames t, t+1 and their stick figures) for training, on data
prepared from a real clip (tests/dance_utils.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dance_utils import make_dance_clips

from vid2vid_app.dance.dataset import TemporalPairDataset, downscale_frame
from vid2vid_app.dance.prepare import prepare_dance_data
from vid2vid_app.imaging import to_tensor
from vid2vid_app.pose import RenderStyle


@pytest.fixture(scope="module")
def prepared(bundled_samples, tmp_path_factory):
    """The 40-frame 180x320 clip prepared once at a 64x128 canvas."""
    clips = make_dance_clips(bundled_samples, tmp_path_factory.mktemp("clips"))
    return prepare_dance_data([clips["short"]], tmp_path_factory.mktemp("prep") / "data", (64, 128), quiet=True)


def test_temporal_pairs_dataset_items(prepared):
    """Items hold consecutive frames and their stick figures in [-1, 1]; factor 2 averages 2x2
    blocks and halves the keypoints."""
    pairs, _ = prepared.split(0.1)
    ds = TemporalPairDataset(prepared, pairs, RenderStyle(), factor=1)
    item = ds[3]
    t = int(pairs[3])
    for key in ("pose0", "pose1", "frame0", "frame1"):
        assert item[key].shape == (3, 128, 64) and item[key].dtype == torch.float32
        assert -1.0 <= item[key].min() and item[key].max() <= 1.0
    np.testing.assert_allclose(item["frame1"].numpy(), to_tensor(np.array(prepared.frames[t + 1]))[0].numpy())
    assert (item["pose0"] > -1).any()  # the stick figure is drawn
    half = TemporalPairDataset(prepared, pairs, RenderStyle(), factor=2, face_boxes=True)[3]
    assert half["frame0"].shape == (3, 64, 32)
    block = np.array(prepared.frames[t][:2, :2], dtype=np.float64).mean(axis=(0, 1))
    np.testing.assert_allclose((half["frame0"][:, 0, 0].numpy() + 1) * 127.5, np.round(block), atol=1e-3)
    x0, y0, x1, y1 = half["box0"].tolist()
    assert x1 - x0 == y1 - y0 > 0 and 0 <= x0 and x1 <= 32 and 0 <= y0 and y1 <= 64


def test_pose_jitter_moves_the_stick_figures_only(prepared):
    """Jitter changes the drawn poses but not the frames, and is reproducible under one seed
    (the training loop seeds numpy per sample)."""
    pairs, _ = prepared.split(0.1)
    plain = TemporalPairDataset(prepared, pairs, RenderStyle())[0]
    jittered = TemporalPairDataset(prepared, pairs, RenderStyle(), pose_jitter=0.05)
    np.random.seed(3)
    a = jittered[0]
    np.random.seed(3)
    b = jittered[0]
    assert torch.equal(a["pose0"], b["pose0"]) and torch.equal(a["pose1"], b["pose1"])
    assert not torch.equal(a["pose0"], plain["pose0"])
    assert torch.equal(a["frame0"], plain["frame0"]) and torch.equal(a["frame1"], plain["frame1"])


def test_downscale_frame_is_a_block_mean():
    frame = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    out = downscale_frame(frame, 2)
    assert out.shape == (2, 3, 3)
    assert out[0, 0, 0] == round(np.mean([frame[0, 0, 0], frame[0, 1, 0], frame[1, 0, 0], frame[1, 1, 0]]))
