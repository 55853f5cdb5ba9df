"""Benchmark: body statistics from a streamed transfer's first look against the whole clip's.

A streamed `dance transfer` normalises with statistics from a first look at a sample of the
source's frames (vid2vid_app.dance.stream.first_look_stats: FIRST_LOOK_FRAMES frames spread over
the clip, each detected on its own) instead of from every detected frame (`--whole-clip`). For
each clip this prints both sets of statistics in the pixels of the bundled 360x640 target and
what the difference does to the output: how far normalising the clip's own (whole-clip,
smoothed) keypoints with the first-look statistics moves them from where the whole-clip
statistics put them, in target pixels and in % of the target's body height.

    python bench/first_look_stats.py [--frames N] [CLIP ...]

Default clips: the bundled samples/*.mp4 and ../shared/samples/pose2sim_*.mp4 (when present).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vid2vid_app.dance.stream import FIRST_LOOK_FRAMES, first_look_stats
from vid2vid_app.dance.transfer import DETECT_MAX_SIDE, detect_source_poses
from vid2vid_app.imaging import keypoints_to_canvas, letterbox_geometry
from vid2vid_app.pose import BodyStats, compute_stats, normalize
from vid2vid_app.pose.keypoints import PoseSequence
from vid2vid_app.video import probe

REPO = Path(__file__).resolve().parents[1]
# The bundled target's statistics (tests/dance_transfer_utils.py): what the clips are mapped onto.
TARGET_SIZE = (360, 640)
TARGET = BodyStats(close_ankle_y=404.0, far_ankle_y=363.8, median_ankle_y=366.9, height_close=215.2,
                   height_far=206.0, width=360, height=640, valid_frames=100)


def compare(clip: Path, count: int) -> tuple[BodyStats, BodyStats, np.ndarray]:
    """(whole-clip statistics, first-look statistics, per frame and body point the shift in target
    pixels) for one clip."""
    info = probe(clip)
    whole = detect_source_poses(clip, 0, info.frame_count, quiet=True, landmarks="body").sequence
    box = letterbox_geometry(info.width, info.height, *TARGET_SIZE)
    fitted = PoseSequence(keypoints_to_canvas(whole.keypoints, box), TARGET_SIZE, whole.fps)
    exact = compute_stats(fitted)
    look, _ = first_look_stats(clip, 0, info.frame_count, None, (0, 0, info.width, info.height), TARGET_SIZE,
                               float(info.fps), DETECT_MAX_SIDE, count)
    if look is None:
        raise SystemExit(f"{clip}: the first look found too few frames with nose and both ankles")
    moved = normalize(fitted, look, TARGET).keypoints[..., :2] - normalize(fitted, exact, TARGET).keypoints[..., :2]
    return exact, look, np.linalg.norm(moved, axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--frames", type=int, default=FIRST_LOOK_FRAMES, help="frames of the first look")
    args = parser.parse_args()
    clips = args.clips or sorted((REPO / "samples").glob("*.mp4")) + sorted(
        (REPO.parent / "shared" / "samples").glob("pose2sim_*.mp4"))
    print(f"first look at {args.frames} frames vs every frame; statistics in pixels of the 360x640 target; "
          f"shift = where the output's points move, target body height {TARGET.height_close:.0f} px")
    print(f"{'clip':<30} {'close':>11} {'far':>11} {'height close':>13} {'height far':>11} "
          f"{'shift mean':>10} {'max':>6} {'mean %':>7}")
    for clip in clips:
        exact, look, shift = compare(clip, args.frames)
        print(f"{clip.stem:<30} {exact.close_ankle_y:>5.0f}/{look.close_ankle_y:<5.0f} "
              f"{exact.far_ankle_y:>5.0f}/{look.far_ankle_y:<5.0f} {exact.height_close:>6.0f}/{look.height_close:<6.0f} "
              f"{exact.height_far:>5.0f}/{look.height_far:<5.0f} {np.nanmean(shift):>10.1f} {np.nanmax(shift):>6.1f} "
              f"{100 * np.nanmean(shift) / TARGET.height_close:>6.1f}%")
        sys.stdout.flush()
    print("\nclose / far: ankle line nearest to / farthest from the camera (whole clip / first look); heights "
          "near them; shift: mean and max over frames and body points.")


if __name__ == "__main__":
    main()
