"""Clips for the `dance train` data tests, derived from the bundled real sample
(samples/target_cam01.mp4, a real 360x640 portrait recording of one man), and the `dance` CLI
runner they share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from video_utils import make_test_clip

from vid2vid_app.video import iter_frames


def run_cli(args: list[str]):
    """Run `dance ARGS` through click's CliRunner; an unexpected exception (a traceback a user
    would see) is raised, refusals come back as the result with a non-zero exit code."""
    from click.testing import CliRunner

    from vid2vid_app.cli.dance import dance

    result = CliRunner().invoke(dance, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def make_dance_clips(bundled_samples: Path, root: Path) -> dict[str, Path]:
    """Writes into ``root`` and returns:

    - ``short``: the sample's first 40 frames at 180x320 (portrait);
    - ``landscape``: 20 of those frames centred on a 640x360 black canvas (a landscape video of the
      same upright person);
    - ``few``: 5 frames with the person followed by 20 black frames;
    - ``empty``: 12 black frames (nobody);
    - ``other_size``: 4 black frames of 96x64.
    """
    frames = list(iter_frames(bundled_samples / "target_cam01.mp4", end=40, size=(180, 320)))
    out = {"short": make_test_clip(root / "short.mp4", frames, 60)}
    land = []
    for f in frames[:20]:
        canvas = np.zeros((360, 640, 3), np.uint8)
        canvas[20:340, 230:410] = f
        land.append(canvas)
    out["landscape"] = make_test_clip(root / "landscape.mp4", land, 60)
    black = np.zeros((320, 180, 3), np.uint8)
    out["few"] = make_test_clip(root / "few.mp4", frames[:5] + [black] * 20, 60)
    out["empty"] = make_test_clip(root / "empty.mp4", [black] * 12, 60)
    out["other_size"] = make_test_clip(root / "other.mp4", [np.zeros((64, 96, 3), np.uint8)] * 4, 60)
    return out
