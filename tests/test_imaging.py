"""imaging: the one place for image conversions and image files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid2vid_app.imaging import (
    float_array_to_uint8,
    read_image,
    to_float_array,
    to_tensor,
    to_uint8,
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


def test_write_image_needs_an_image_suffix(tmp_path):
    """The format comes from the file's own suffix, not from a dot in a folder name."""
    image = np.full((6, 8, 3), 10, np.uint8)
    (tmp_path / "run.v2").mkdir()
    with pytest.raises(ValueError, match="cannot write an image"):
        write_image(tmp_path / "run.v2" / "grid.txt", image)
    write_image(tmp_path / "run.v2" / "grid", image)  # no suffix: PNG
    assert np.array_equal(read_image(tmp_path / "run.v2" / "grid"), image)
    assert not any(p.name.startswith(".") for p in (tmp_path / "run.v2").iterdir())
