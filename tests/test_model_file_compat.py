"""Model files written by version 0.1 keep loading and give the same outputs.

The fixtures in ``tests/fixtures/model_files`` were written by version 0.1 (tiny networks, ngf 4):
a `dance train` model.pt, a `translate-video train` CycleGAN model.pt and a stage generator export.
``expected_outputs.npz`` holds what 0.1 computed from them on the seeded inputs rebuilt below.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).parent / "fixtures" / "model_files"


def _inputs(h: int, w: int) -> dict[str, np.ndarray]:
    """The inputs the expected outputs were computed from, drawn in the same order."""
    rng = np.random.default_rng(0)
    f32 = np.float32
    return {
        "dance_pose": rng.uniform(-1, 1, (1, 3, h, w)).astype(f32),
        "dance_prev": rng.uniform(-1, 1, (1, 3, h, w)).astype(f32),
        "rgb_in": rng.uniform(-1, 1, (1, 3, 64, 64)).astype(f32),
        "export_in": rng.uniform(-1, 1, (1, 6, h, w)).astype(f32),
    }


def test_v1_model_files_load_and_reproduce_their_outputs():
    from vid2vid_app.dance.model import DanceModel
    from vid2vid_app.training import load_generator_export
    from vid2vid_app.translate.model import load_model

    expected = np.load(FIXTURES / "expected_outputs.npz")
    meta = json.loads((FIXTURES / "dance_model_v1.json").read_text())

    dance = DanceModel.load(FIXTURES / "dance_model_v1.pt")
    assert list(dance.resolution) == meta["resolution"] and list(dance.target_size) == meta["target_size"]
    assert dance.letterbox.y0 == meta["letterbox"]["y0"]
    assert dance.target_stats.close_ankle_y == np.float32(meta["target_stats"]["close_ankle_y"])
    w, h = dance.resolution
    x = _inputs(h, w)
    out = dance.generate(torch.from_numpy(x["dance_pose"]), torch.from_numpy(x["dance_prev"])).numpy()
    np.testing.assert_allclose(out, expected["dance_out"], atol=1e-5)

    cyc = load_model(FIXTURES / "translate_cyclegan_v1.pt")
    assert cyc.mode == "cyclegan"
    with torch.no_grad():
        for direction, key in (("AtoB", "cyc_ab"), ("BtoA", "cyc_ba")):
            got = cyc.generator(direction)(torch.from_numpy(x["rgb_in"])).numpy()
            np.testing.assert_allclose(got, expected[key], atol=1e-5)

    generator, export_meta = load_generator_export(FIXTURES / "generator_export_v1.pt")
    assert export_meta["stage"] == "global"
    with torch.no_grad():
        np.testing.assert_allclose(generator(torch.from_numpy(x["export_in"])).numpy(), expected["export_out"],
                                   atol=1e-5)


def test_every_trained_network_is_written_as_a_generator_export(tmp_path):
    """A dance model re-saved by this version is a generator export (the one model file format),
    whose metadata keeps what transfer needs; translate-video refuses it by name."""
    from vid2vid_app.config import from_dict
    from vid2vid_app.dance.config import DanceConfig
    from vid2vid_app.dance.model import DanceModel, save_dance_model
    from vid2vid_app.errors import UserError
    from vid2vid_app.pose.normalize import BodyStats
    from vid2vid_app.training import load_generator_export
    from vid2vid_app.translate.model import load_model

    old = DanceModel.load(FIXTURES / "dance_model_v1.pt")
    path = save_dance_model(tmp_path / "model.pt", generator=old.generator, face_generator=None,
                            config=from_dict(DanceConfig, old.config), target_stats=old.target_stats,
                            render_style=old.render_style, target_size=old.target_size,
                            resolution=old.resolution, letterbox=old.letterbox, stage=old.stage, data=old.data)
    raw = torch.load(path, weights_only=True)
    assert raw["kind"] == "generator" and raw["meta"]["app"] == "dance"
    generator, meta = load_generator_export(path)
    assert meta["resolution"] == list(old.resolution)
    assert BodyStats.from_json(meta["target_stats"]) == old.target_stats
    again = DanceModel.load(path)
    w, h = again.resolution
    x = _inputs(h, w)
    expected = np.load(FIXTURES / "expected_outputs.npz")["dance_out"]
    out = again.generate(torch.from_numpy(x["dance_pose"]), torch.from_numpy(x["dance_prev"])).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)
    for dance_file in (path, FIXTURES / "dance_model_v1.pt"):
        try:
            load_model(dance_file)
        except UserError as exc:
            assert "use it with `dance transfer`" in str(exc)
        else:
            raise AssertionError("translate-video loaded a dance model")


def test_v1_dance_model_means_body_landmarks_and_draws_holistic_poses_body_only():
    """A model file from before holistic figures has no landmark setting: it was trained on body-only
    figures, so transfer detects body landmarks for it and draws the body of any holistic pose."""
    from pose_utils import standing_pose

    from vid2vid_app.dance.model import DanceModel
    from vid2vid_app.pose import parts

    dance = DanceModel.load(FIXTURES / "dance_model_v1.pt")
    assert dance.landmarks == "body"
    tw, th = dance.target_size
    body = standing_pose(tw, th)
    face = np.zeros((parts.NUM_FACE, 3), np.float32)
    face[:, :2] = body[0, :2] + np.random.default_rng(0).normal(0, 5, (parts.NUM_FACE, 2))
    face[:, 2] = 0.9
    holistic = parts.pack(body, face, None)
    np.testing.assert_array_equal(dance.render(holistic), dance.render(body))
