"""dance.model: the dance model file (loading, refusals) and what the loaded model derives from
it, with tiny random-weight model files (tests/dance_transfer_utils.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from dance_transfer_utils import save_tiny_model

from vid2vid_app.dance.model import DanceModel
from vid2vid_app.errors import UserError
from vid2vid_app.models.face import face_box


@pytest.mark.parametrize(("content", "message"), [
    ({}, "{path} is not a `dance train` model file."),
    ([1, 2], "{path} is not a `dance train` model file."),
    ({"kind": "generator", "format_version": 999}, "{path} was written by a newer version of vid2vid_app"),
    (b"not a model", "{path} is not a readable model file"),
    (None, "model file {path} does not exist."),
], ids=["empty-dict", "not-a-dict", "newer-format", "not-a-torch-file", "missing"])
def test_files_that_are_not_dance_models_are_refused(tmp_path, content, message):
    path = tmp_path / "alice" / "model.pt"
    path.parent.mkdir()
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(UserError, match=re.escape(message.format(path=path))):
        DanceModel.load(path)


def test_face_box_uses_the_face_side_stored_in_the_model(tmp_path):
    """The face stage was trained on boxes of one side per target; transfer must use that side
    (not the per-frame head size) for the same keypoints, centred on the nose in the canvas."""
    kp = np.zeros((33, 3), np.float32)
    kp[:, 2] = 0.9
    kp[:, 0], kp[:, 1] = 180.0, 250.0
    kp[7, 0], kp[8, 0] = 170.0, 190.0  # ears 20 px apart in the target video
    kp[11, 0], kp[12, 0] = 150.0, 210.0  # shoulders 60 px apart
    default = DanceModel.load(save_tiny_model(tmp_path / "default.pt", face=True), "cpu")
    per_frame = default.face_box(kp)
    stored = DanceModel.load(save_tiny_model(tmp_path / "side.pt", face=True, data={"face_side": 21}), "cpu")
    box = stored.face_box(kp)
    assert box is not None and (box[2] - box[0], box[3] - box[1]) == (21, 21)
    assert per_frame is not None and per_frame[2] - per_frame[0] != 21
    expected = face_box(stored.canvas_keypoints(kp), stored.resolution, side=21)
    np.testing.assert_array_equal(box, np.asarray(expected, np.float32))
