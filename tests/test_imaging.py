"""imaging: the one place for image conversions and image files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid2vid_app.imaging import (
    float_array_to_uint8,
    keypoints_to_canvas,
    letterbox,
    letterbox_geometry,
    read_image,
    to_float_array,
    to_tensor,
    to_uint8,
    to_uint8_tensor,
    write_image,
)


def test_numpy_conversions_match_the_torch_ones():
    """The render/encode threads convert with numpy; the results must equal imaging's torch
    conversions exactly (including values that round half to even)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 9, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_float_array(images), to_tensor(images).numpy())
    x = np.concatenate([rng.uniform(-1.2, 1.2, (1, 3, 5, 4)),
                        (np.arange(60).reshape(1, 3, 5, 4) + 0.5) / 127.5 - 1], axis=0).astype(np.float32)
    np.testing.assert_array_equal(float_array_to_uint8(x), to_uint8(torch.from_numpy(x)))
    np.testing.assert_array_equal(float_array_to_uint8(x[0]), to_uint8(torch.from_numpy(x[0])))



def test_uint8_tensor_is_to_uint8_in_channel_first_order():
    """The conversion a GPU queues before the encoder thread copies the frame: the same values as
    :func:`to_uint8`, as a uint8 (N, C, H, W) tensor that stays where it was."""
    x = torch.linspace(-1.3, 1.3, 2 * 3 * 5 * 4).reshape(2, 3, 5, 4)
    out = to_uint8_tensor(x)
    assert out.dtype == torch.uint8 and out.shape == x.shape and out.device == x.device
    np.testing.assert_array_equal(out.permute(0, 2, 3, 1).numpy(), to_uint8(x))


@pytest.mark.parametrize("size", [(200, 300), (300, 200), (256, 256)], ids=["portrait", "landscape", "same"])
def test_keypoints_land_where_letterbox_puts_their_pixels(size):
    """A point of the image and the pixel under it end up at the same place of the canvas."""
    w, h = size
    frame = np.zeros((h, w, 3), np.uint8)
    frame[h // 3 - 2 : h // 3 + 2, w // 4 - 2 : w // 4 + 2] = 255  # a 4x4 dot centred at (w/4, h/3)
    canvas, box = letterbox(frame, 256, 256)
    assert box == letterbox_geometry(w, h, 256, 256)
    kp = np.array([[w // 4, h // 3, 0.7], [0, 0, 1.0], [np.nan, np.nan, 0.0]], np.float32)
    out = keypoints_to_canvas(kp, box)
    ys, xs = np.nonzero(canvas[..., 0] > 127)
    np.testing.assert_allclose(out[0, :2], (xs.mean() + 0.5, ys.mean() + 0.5), atol=1.0)
    np.testing.assert_allclose(out[1, :2], (box.x0, box.y0))  # the image's corner: the content's corner
    assert out[0, 2] == np.float32(0.7) and np.isnan(out[2, :2]).all() and out.dtype == np.float32
    assert kp[1, 0] == 0  # the input is not changed


def test_keypoints_of_a_frame_of_another_size():
    # 720x1280 into 360x640 (same aspect): halved, no bars.
    corners = np.array([[[0, 0, 1], [720, 1280, 0.5]]], dtype=np.float32)
    out = keypoints_to_canvas(corners, letterbox_geometry(720, 1280, 360, 640))
    np.testing.assert_allclose(out[0, :, :2], [[0, 0], [360, 640]])
    # 1280x720 into 360x640: scale 360/1280, content 360x202 (202.5 rounded to even), top bar 219.
    corners = np.array([[[0, 0, 1], [1280, 720, 0.5]]], dtype=np.float32)
    out = keypoints_to_canvas(corners, letterbox_geometry(1280, 720, 360, 640))
    np.testing.assert_allclose(out[0, :, :2], [[0, 219], [360, 219 + 202.5]], atol=1e-4)


def test_write_image_needs_an_image_suffix(tmp_path):
    """The format comes from the file's own suffix, not from a dot in a folder name."""
    image = np.full((6, 8, 3), 10, np.uint8)
    (tmp_path / "run.v2").mkdir()
    with pytest.raises(ValueError, match="cannot write an image"):
        write_image(tmp_path / "run.v2" / "grid.txt", image)
    write_image(tmp_path / "run.v2" / "grid", image)  # no suffix: PNG
    assert np.array_equal(read_image(tmp_path / "run.v2" / "grid"), image)
    assert not any(p.name.startswith(".") for p in (tmp_path / "run.v2").iterdir())
