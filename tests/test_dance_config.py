"""dance.config: presets, --steps parsing, validation, canvas sizes, the config's JSON round trip."""

from __future__ import annotations

import pytest

from vid2vid_app.config import from_dict, to_dict
from vid2vid_app.dance.config import DanceConfig, canvas_size, final_canvas, make_config, parse_steps
from vid2vid_app.errors import UserError


def test_parse_steps_takes_one_count_or_counts_per_stage():
    assert parse_steps("7", {})["local"] == 7
    assert parse_steps("global=5,face=2", {"global": 1, "local": 3}) == {"global": 5, "local": 3, "face": 2}


@pytest.mark.parametrize(("build", "message"), [
    (lambda: parse_steps("lots", {}), "--steps"),
    (lambda: make_config("tiny", size=(100, 64)), "multiples of 8"),
    (lambda: make_config("tiny", stages=("local",)), "include global"),
], ids=["steps-not-a-number", "size-not-multiple-of-8", "stages-without-global"])
def test_bad_settings_are_user_errors(build, message):
    with pytest.raises(UserError, match=message):
        build()


def test_preset_sizes_turn_to_the_videos_orientation():
    """The tiny preset's 64x128 canvas (global stage) is turned for a landscape video; the local
    stage doubles it."""
    cfg = make_config("tiny")
    assert canvas_size(cfg, (640, 360)) == (128, 64)
    assert canvas_size(cfg, (180, 320)) == (64, 128)
    assert final_canvas(cfg, (640, 360)) == (128, 64)  # tiny: global stage only
    with_local = make_config("tiny", stages=("global", "local"))
    assert final_canvas(with_local, (640, 360)) == (256, 128)


def test_model_config_round_trip_keeps_every_field():
    cfg = make_config("tiny", stages=("global", "face"))
    assert to_dict(from_dict(DanceConfig, to_dict(cfg))) == to_dict(cfg)
