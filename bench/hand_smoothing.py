"""How the hands' One-Euro parameters (vid2vid_app.pose.smoothing.HAND_ONE_EURO) were chosen.

Hands move faster than the rest of the body and their landmarks tremble more (MediaPipe finds them
in small crops), so the body's smoothing either leaves them shaky or drags fingers off the hand.
This script detects the hands of the bundled clips with MediaPipe Holistic (no smoothing), then
smooths them with a grid of (min_cutoff, beta) and prints, per setting:

* jitter: mean |x[t+1] - 2 x[t] + x[t-1]| of the hand points, in hand lengths per frame^2 (hand
  length = wrist to the middle finger's base), lower is steadier;
* drift: mean distance of the smoothed points from the detected ones, in hand lengths.

Choice: the setting with the lowest jitter + drift (both in hand lengths, equal weight): drift is
what smoothing costs (a fingertip drawn beside the finger, lag behind fast moves), jitter what it
buys (flicker of the drawn hand). Two other criteria were tried and dropped: a noise bound from
the second differences (sqrt(mean |d2 x|^2 / 12)) is dominated by the hands' real motion on these
60 fps clips and so allows any smoothing; predicting left-out frames from smoothed neighbours
favours no smoothing at all, for the same reason.

Usage: ``python bench/hand_smoothing.py [CLIP ...]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vid2vid_app.pose import PoseSequence, smooth  # noqa: E402
from vid2vid_app.pose.parallel import detect_chunked  # noqa: E402
from vid2vid_app.video import FrameRange, probe  # noqa: E402

MIN_CUTOFFS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
BETAS = (0.0, 2.0, 4.0, 6.0, 8.0, 16.0)
CLIPS = ("target_cam01.mp4", "target_cam02.mp4", "target_cam03.mp4", "source_two_people.mp4")


def hand_measures(raw: PoseSequence, smoothed: PoseSequence) -> tuple[float, float]:
    """(jitter, drift) of the hands in hand lengths, over the frames where a hand was found."""
    jitters, drifts = [], []
    for side in (0, 1):
        h_raw, h_s = raw.hands[:, side], smoothed.hands[:, side]
        length = np.linalg.norm(h_raw[:, 9, :2] - h_raw[:, 0, :2], axis=-1)  # (T,)
        ok = np.isfinite(length) & (length > 1)
        drift = np.linalg.norm(h_s[:, :, :2] - h_raw[:, :, :2], axis=-1) / np.where(ok, length, np.nan)[:, None]
        drifts.append(drift[ok].ravel())
        acc = h_s[2:, :, :2] - 2 * h_s[1:-1, :, :2] + h_s[:-2, :, :2]
        triple = ok[2:] & ok[1:-1] & ok[:-2]
        jitters.append((np.linalg.norm(acc, axis=-1) / length[1:-1, None])[triple].ravel())
    return float(np.nanmean(np.concatenate(jitters))), float(np.nanmean(np.concatenate(drifts)))


def main(paths: list[Path]) -> None:
    raws = []
    for path in paths:
        info = probe(path)
        seq = detect_chunked(FrameRange(path), info.frame_count, float(info.fps), (info.width, info.height),
                             landmarks="holistic", quiet=True)
        found = seq.part_found()
        print(f"{path.name}: {len(seq)} frames, left hand in {int(found['left_hand'].sum())}, "
              f"right hand in {int(found['right_hand'].sum())}")
        raws.append(seq)

    def score(params: dict) -> tuple[float, float]:
        rows = [hand_measures(raw, smooth(raw, hand_params=params)) for raw in raws]
        return float(np.mean([r[0] for r in rows])), float(np.mean([r[1] for r in rows]))

    unsmoothed = float(np.mean([hand_measures(raw, raw)[0] for raw in raws]))
    print(f"\nunsmoothed jitter {unsmoothed:.4f} hand lengths per frame^2")
    print(f"{'min_cutoff':>10} {'beta':>6} {'jitter':>8} {'drift':>7}")
    best = None
    for min_cutoff in MIN_CUTOFFS:
        for beta in BETAS:
            params = {"min_cutoff": min_cutoff, "beta": beta, "d_cutoff": 1.0}
            jitter, drift = score(params)
            print(f"{min_cutoff:10.1f} {beta:6.1f} {jitter:8.4f} {drift:7.4f}")
            if best is None or jitter + drift < best[0] + best[1]:
                best = (jitter, drift, params)
    body = score({"min_cutoff": 2.0, "beta": 4.0, "d_cutoff": 1.0})
    print(f"\nbody's setting (2, 4): jitter {body[0]:.4f}, drift {body[1]:.4f}")
    print(f"chosen (lowest jitter + drift): {best[2]}: jitter {best[0]:.4f}, drift {best[1]:.4f}")

if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]] or [REPO / "samples" / name for name in CLIPS]
    main(args)
