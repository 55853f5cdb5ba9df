"""Draw docs/holistic_figure.png: holistic stick figures next to the real pictures they come from.

Left pair: the astronaut photo (samples/photos/astronaut.jpg), whose face MediaPipe Holistic finds
(jaw, brows, eyes, nose, lips, pupils). Right pair: a frame of samples/target_cam01.mp4, where the
man's head is masked (no face is found, so only the body's head points are drawn) but both hands
are found and drawn bone by bone; both panels are cut to the person. Usage: ``python samples/holistic_figure.py [OUT.png]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vid2vid_app.imaging import hstack, write_image  # noqa: E402
from vid2vid_app.pose import PoseDetector, RenderStyle, render_pose  # noqa: E402
from vid2vid_app.pose.parallel import detect_chunked  # noqa: E402
from vid2vid_app.pose.smoothing import fill_gaps, smooth  # noqa: E402
from vid2vid_app.video import FrameRange, probe  # noqa: E402

HEIGHT = 512
STYLE = RenderStyle(thickness_scale=1.5, detail_scale=0.5)


def photo_pair() -> list[np.ndarray]:
    image = cv2.cvtColor(cv2.imread(str(REPO / "samples" / "photos" / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    with PoseDetector(static_image_mode=True, landmarks="holistic") as det:
        pose = det.detect(image)
    h, w = image.shape[:2]
    return [image, render_pose(pose, w, h, STYLE)]


def clip_pair(clip: Path, index: int) -> list[np.ndarray]:
    info = probe(clip)
    seq = detect_chunked(FrameRange(clip), info.frame_count, float(info.fps), (info.width, info.height),
                         workers=1, landmarks="holistic")
    seq = smooth(fill_gaps(seq)[0])
    frame = list(FrameRange(clip)(index, index + 1))[0]
    pose = seq.packed()[index]
    figure = render_pose(pose, info.width, info.height, STYLE)
    # Cut both to the person (with a margin), so the hands are large enough to see.
    pts = pose[(pose[:, 2] > 0.3) & np.isfinite(pose[:, :2]).all(axis=1), :2]
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    m = 0.12 * max(x1 - x0, y1 - y0)
    x0, y0 = max(0, int(x0 - m)), max(0, int(y0 - m))
    x1, y1 = min(info.width, int(x1 + m)), min(info.height, int(y1 + m))
    return [frame[y0:y1, x0:x1], figure[y0:y1, x0:x1]]


def best_hand_frame(clip: Path) -> int:
    """A frame where both hands were found (the first of the longest such run's middle)."""
    info = probe(clip)
    seq = detect_chunked(FrameRange(clip), info.frame_count, float(info.fps), (info.width, info.height),
                         workers=1, landmarks="holistic")
    found = seq.part_found()
    both = np.flatnonzero(found["left_hand"] & found["right_hand"])
    return int(both[len(both) // 2]) if len(both) else 0


def main(out: Path) -> None:
    clip = REPO / "samples" / "target_cam01.mp4"
    panels = photo_pair() + clip_pair(clip, best_hand_frame(clip))
    gap = np.full((HEIGHT, 8, 3), 255, np.uint8)
    row = hstack(panels[:2], height=HEIGHT)
    row2 = hstack(panels[2:], height=HEIGHT)
    write_image(out, np.concatenate([row, gap, row2], axis=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "holistic_figure.png")
